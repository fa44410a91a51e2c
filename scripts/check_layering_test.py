"""Tests of scripts/check-layering on small fake trees: each violation kind is reported, the
allowlist hides known ones and fails on stale ones. The link and source checks configure a real
CMake project in a temporary dir (cmake and a C++ compiler needed, nothing is compiled).

    python3 scripts/check_layering_test.py
"""

import importlib.machinery
import importlib.util
import io
import os
import shutil
import subprocess
import tempfile
import textwrap
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
_loader = importlib.machinery.SourceFileLoader("check_layering",
                                               os.path.join(HERE, "check-layering"))
_spec = importlib.util.spec_from_loader("check_layering", _loader)
check_layering = importlib.util.module_from_spec(_spec)
_loader.exec_module(check_layering)

DOC = """\
# Fake

```layers
low:
mid: low
side: low
high: mid side
internal: low/*
```
"""

# folder -> (library, sources, libraries it links)
TREE = {
    "low": ("lib_low", {"low.h": "", "low.cc": '#include "low/low.h"\n',
                        "inner/detail.h": "", "inner/detail.cc": '#include "low/inner/detail.h"\n'},
            []),
    "mid": ("lib_mid", {"mid.h": '#include "low/low.h"\n', "mid.cc": '#include "mid/mid.h"\n'},
            ["lib_low"]),
    "side": ("lib_side", {"side.h": "", "side.cc": '#include "low/low.h"\n'}, ["lib_low"]),
    "high": ("lib_high", {"high.h": '#include "side/side.h"\n',
                          "high.cc": '#include "high/high.h"\n#include "mid/mid.h"\n'},
             ["lib_mid", "lib_side"]),
}


class FakeTree:
    """A repository with DOC, TREE's sources and CMakeLists.txt files, in a temporary dir."""

    def __init__(self, root):
        self.root = root
        self.build = os.path.join(root, "build")
        self.write("docs/architecture.md", DOC)
        self.write("CMakeLists.txt", textwrap.dedent("""\
            cmake_minimum_required(VERSION 3.20)
            project(fake LANGUAGES CXX)
            foreach(dir low mid side high)
              add_subdirectory(src/${dir})
            endforeach()
            """))
        for folder, (lib, sources, links) in TREE.items():
            for name, text in sources.items():
                self.write(f"src/{folder}/{name}", text)
            self.write_lists(folder, lib, links)

    def write(self, rel, text):
        path = os.path.join(self.root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)

    def append(self, rel, text):
        with open(os.path.join(self.root, rel), "a") as f:
            f.write(text)

    def write_lists(self, folder, lib, links, extra=""):
        cc = sorted(n for n in TREE[folder][1] if n.endswith(".cc"))
        text = f"add_library({lib} {' '.join(cc)})\n"
        if links:
            text += f"target_link_libraries({lib} PUBLIC {' '.join(links)})\n"
        self.write(f"src/{folder}/CMakeLists.txt", text + extra)

    def configure(self):
        subprocess.run(["cmake", "-S", self.root, "-B", self.build], check=True,
                       capture_output=True)

    def check(self, build=False, allowlist=None):
        """(exit status, output lines) of the check."""
        path = None
        if allowlist is not None:
            path = os.path.join(self.root, "allowlist")
            with open(path, "w") as f:
                f.write(allowlist)
        out = io.StringIO()
        code = check_layering.run(self.root, self.build if build else None, path, out=out)
        return code, out.getvalue().splitlines()


class IncludeTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="espy-layering-test-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.tree = FakeTree(self.tmp)

    def test_clean_tree_passes(self):
        code, out = self.tree.check()
        self.assertEqual(code, 0, out)
        self.assertIn("0 new", out[-1])

    def test_include_against_the_order_is_reported(self):
        self.tree.append("src/low/low.cc", '#include "high/high.h"\n')
        code, out = self.tree.check()
        self.assertEqual(code, 1)
        self.assertIn("NEW: include src/low/low.cc -> high/high.h (low may not use high)", out)

    def test_include_of_a_sibling_is_reported(self):
        self.tree.append("src/side/side.cc", '#include "mid/mid.h"\n')
        code, out = self.tree.check()
        self.assertEqual(code, 1)
        self.assertIn("NEW: include src/side/side.cc -> mid/mid.h (side may not use mid)", out)

    def test_what_a_used_folder_uses_may_be_used(self):
        self.tree.append("src/high/high.cc", '#include "low/low.h"\n')
        code, out = self.tree.check()
        self.assertEqual(code, 0, out)

    def test_internal_header_from_outside_its_owner_is_reported(self):
        self.tree.append("src/mid/mid.cc", '#include "low/inner/detail.h"\n')
        code, out = self.tree.check()
        self.assertEqual(code, 1)
        self.assertIn("NEW: include src/mid/mid.cc -> low/inner/detail.h "
                      "(low/inner is internal to low/)", out)

    def test_public_subfolder_of_an_internal_folder_may_be_used(self):
        self.tree.write("docs/architecture.md",
                        DOC.replace("internal: low/*\n", "internal: low/*\npublic: low/inner\n"))
        self.tree.append("src/mid/mid.cc", '#include "low/inner/detail.h"\n')
        code, out = self.tree.check()
        self.assertEqual(code, 0, out)

    def test_folder_missing_from_the_order_is_reported(self):
        self.tree.write("src/extra/extra.cc", '#include "low/low.h"\n')
        code, out = self.tree.check()
        self.assertEqual(code, 1)
        self.assertTrue(any("folder extra has no line in the layer order" in l for l in out), out)

    def test_cycle_in_the_order_is_reported(self):
        self.tree.write("docs/architecture.md", DOC.replace("low:\n", "low: high\n"))
        code, out = self.tree.check()
        self.assertEqual(code, 1)
        self.assertIn("NEW: order low: its layer order has a cycle through it", out)

    def test_allowlisted_violation_passes_and_a_stale_line_fails(self):
        self.tree.append("src/low/low.cc", '#include "high/high.h"\n')
        known = "include src/low/low.cc -> high/high.h (low may not use high)"
        code, out = self.tree.check(allowlist=f"# why it is there\n{known}  # to go\n")
        self.assertEqual(code, 0, out)
        self.assertIn(f"known: {known}", out)
        # Fixed: the line must go too.
        self.tree.write("src/low/low.cc", '#include "low/low.h"\n')
        code, out = self.tree.check(allowlist=f"{known}\n")
        self.assertEqual(code, 1)
        self.assertIn(f"FIXED: {known}", out)


@unittest.skipUnless(shutil.which("cmake"), "needs cmake")
class BuildGraphTest(unittest.TestCase):
    """One configured fake project; each test changes its CMakeLists.txt files, and the check
    configures it again."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="espy-layering-test-")
        cls.tree = FakeTree(cls.tmp)
        cls.tree.configure()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, True)

    def tearDown(self):
        for folder, (lib, _, links) in TREE.items():
            self.tree.write_lists(folder, lib, links)

    def test_clean_project_passes(self):
        code, out = self.tree.check(build=True)
        self.assertEqual(code, 0, out)

    def test_link_against_the_order_is_reported(self):
        self.tree.write_lists("low", "lib_low", ["lib_high"])
        code, out = self.tree.check(build=True)
        self.assertEqual(code, 1)
        self.assertIn("NEW: link lib_low -> lib_high (low may not use high)", out)

    def test_link_to_an_internal_library_is_reported(self):
        self.tree.write_lists("low", "lib_low", [], extra="add_subdirectory(inner)\n")
        self.tree.write("src/low/inner/CMakeLists.txt", "add_library(lib_detail detail.cc)\n")
        self.addCleanup(os.remove, os.path.join(self.tmp, "src/low/inner/CMakeLists.txt"))
        self.tree.write_lists("mid", "lib_mid", ["lib_low", "lib_detail"])
        code, out = self.tree.check(build=True)
        self.assertEqual(code, 1)
        self.assertIn("NEW: link lib_mid -> lib_detail (low/inner is internal to low/)", out)
        self.assertFalse(any("lib_low -> lib_detail" in l for l in out), out)

    def test_include_without_a_link_is_reported(self):
        # high.h (included by high.cc) includes side/side.h; low comes through lib_mid.
        self.tree.write_lists("high", "lib_high", ["lib_mid"])
        code, out = self.tree.check(build=True)
        self.assertEqual(code, 1)
        self.assertIn("NEW: uses lib_high includes side/side.h but links no library of src/side/",
                      out)
        self.assertFalse(any("low/" in l for l in out if l.startswith("NEW")), out)

    def test_source_listed_by_another_folder_is_reported(self):
        self.tree.write_lists("mid", "lib_mid", ["lib_low"], extra=(
            "target_sources(lib_low PRIVATE ${PROJECT_SOURCE_DIR}/src/side/side.cc)\n"))
        code, out = self.tree.check(build=True)
        self.assertEqual(code, 1)
        self.assertIn("NEW: source src/side/side.cc of lib_low is listed in "
                      "src/mid/CMakeLists.txt, not in src/side/CMakeLists.txt", out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
