"""The Debian package on a bare Debian 12: build the .deb, install it with apt in a debootstrap
chroot, and start the service as its systemd unit would.

Steps (each fails with what it expected):
  1. packaging/build-deb makes the .deb from $ESPY_BIN; its Depends must name the package of every
     shared library the binary links (its ELF NEEDED entries, as ldd and dpkg -S find them here).
  2. A bookworm minbase chroot (debootstrap, from the mirror of this machine's apt sources; the
     finished tree is kept as a tarball under the cache dir, so only the first run downloads it).
  3. `apt-get install ./espy_*.deb` in the chroot, which must pull the Depends from the mirror.
  4. The user espy, /var/lib/espy, the conffiles, the unit and the man page are where they belong.
  5. The unit's ExecStart, read from the installed unit file, runs in the chroot as its User= and
     Group=, in its WorkingDirectory=, with its Environment=/EnvironmentFile= (plus ESPY_LISTEN
     for a free loopback port, as `systemctl edit espy` would add) and no new privileges;
     /healthz must answer 200, the data must land in /var/lib/espy, and SIGTERM (systemd's stop)
     must end it with status 0.
  6. `apt-get remove espy` keeps the config and the data directory and masks the unit;
     `apt-get purge espy` removes all three.

systemd itself does not run in the chroot. Needs root (debootstrap, chroot, mount); exits 77
(skipped) otherwise. The chroot lives under $ESPY_PACKAGE_WORK and is always unmounted and
deleted, also on failure; one left by a killed run is removed at the next start.
"""

import atexit
import glob
import hashlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SUITE = "bookworm"
UNIT = "/lib/systemd/system/espy.service"
HEALTH_TIMEOUT = 60.0  # seconds for /healthz to answer once started
STOP_TIMEOUT = 60.0  # seconds for SIGTERM to end the server
# What systemd puts in every service's environment before Environment= (PATH), and for User=.
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def log(message):
    print(f"package_test: {message}", flush=True)


def fail(message):
    raise AssertionError(message)


def run(cmd, **kwargs):
    """Runs cmd, returns its stdout; a failure raises with the command and its output."""
    result = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            **kwargs)
    if result.returncode != 0:
        fail(f"{shlex.join(cmd)} exited {result.returncode}:\n{result.stdout[-4000:]}")
    return result.stdout


# --- this machine's apt configuration -------------------------------------------------------

def apt_sources():
    """(uri, suite, components) of every enabled `deb` entry of this machine's apt sources, in
    both the one-line (*.list) and the deb822 (*.sources) formats."""
    entries = []
    etc = "/etc/apt"
    for path in [f"{etc}/sources.list"] + sorted(glob.glob(f"{etc}/sources.list.d/*.list")):
        if not os.path.exists(path):
            continue
        with open(path) as f:
            for line in f:
                line = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
                if len(line) >= 3 and line[0] == "deb":
                    entries.append((line[1], line[2], line[3:]))
    for path in sorted(glob.glob(f"{etc}/sources.list.d/*.sources")):
        with open(path) as f:
            paragraphs = re.split(r"\n\s*\n", f.read())
        for paragraph in paragraphs:
            fields = {}
            for line in paragraph.splitlines():
                if line.startswith("#") or ":" not in line or line[0].isspace():
                    continue
                key, value = line.split(":", 1)
                fields[key.strip().lower()] = value.split()
            if "deb" not in fields.get("types", []):
                continue
            if fields.get("enabled", ["yes"])[0].lower() == "no":
                continue
            for uri in fields.get("uris", []):
                for suite in fields.get("suites", []):
                    entries.append((uri, suite, fields.get("components", [])))
    return entries


def apt_proxy():
    """Acquire::http::Proxy of this machine's apt, or ""."""
    out = subprocess.run(["apt-config", "shell", "P", "Acquire::http::Proxy"],
                         stdout=subprocess.PIPE, text=True).stdout
    match = re.match(r"P='(.*)'", out.strip())
    return match.group(1) if match else ""


# --- the chroot ------------------------------------------------------------------------------

def processes_in(root):
    """PIDs of the processes whose root directory is `root`."""
    pids = []
    for proc in glob.glob("/proc/[0-9]*"):
        try:
            if os.readlink(f"{proc}/root") == root:
                pids.append(int(os.path.basename(proc)))
        except OSError:
            pass
    return pids


def mounts_under(root):
    with open("/proc/self/mounts") as f:
        points = [line.split()[1].replace("\\040", " ") for line in f]
    return [p for p in points if p == root or p.startswith(root + "/")]


def remove_chroot(root):
    """Stops what runs in `root`, unmounts what is mounted under it, deletes it. Never follows a
    mount point: rm stays on the chroot's file system."""
    if not os.path.isdir(root):
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in processes_in(root):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while processes_in(root) and time.monotonic() < deadline:
            time.sleep(0.1)
    for point in sorted(mounts_under(root), key=len, reverse=True):
        subprocess.run(["umount", "--lazy", point], check=False)
    if mounts_under(root):
        fail(f"could not unmount {mounts_under(root)}; {root} left in place")
    subprocess.run(["rm", "-rf", "--one-file-system", root], check=True)


def base_tarball(cache, mirror, proxy):
    """A tarball of a fresh `debootstrap --variant=minbase` of SUITE from `mirror`, made once per
    mirror and architecture and kept in `cache`."""
    arch = run(["dpkg", "--print-architecture"]).strip()
    key = hashlib.sha256(mirror.encode()).hexdigest()[:12]
    tarball = os.path.join(cache, f"{SUITE}-minbase-{arch}-{key}.tar")
    if os.path.exists(tarball):
        log(f"base system from {tarball}")
        return tarball
    os.makedirs(cache, exist_ok=True)
    tree = os.path.join(cache, f"debootstrap.{os.getpid()}")
    log(f"debootstrap --variant=minbase {SUITE} from {mirror} (first run only)")
    env = dict(os.environ)
    if proxy:
        env["http_proxy"] = proxy
    started = time.monotonic()
    try:
        run(["debootstrap", "--variant=minbase", SUITE, tree, mirror], env=env)
        # The .debs debootstrap installed are not needed again; the tarball is half the size.
        for deb in glob.glob(os.path.join(tree, "var/cache/apt/archives/*.deb")):
            os.remove(deb)
        partial = tarball + f".{os.getpid()}"
        run(["tar", "-C", tree, "--numeric-owner", "-cf", partial, "."])
        os.rename(partial, tarball)
    finally:
        remove_chroot(tree)
    log(f"debootstrap took {time.monotonic() - started:.0f}s")
    return tarball


def in_chroot(root, *cmd, **kwargs):
    env = {"PATH": SYSTEMD_PATH, "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C.UTF-8"}
    return run(["chroot", root, *cmd], env=env, **kwargs)


# --- the unit --------------------------------------------------------------------------------

def parse_unit(path):
    """{section: {key: [values in order]}} of a systemd unit file."""
    sections, current, pending = {}, None, ""
    with open(path) as f:
        for raw in f:
            line = pending + raw.rstrip("\n")
            pending = ""
            if line.endswith("\\"):
                pending = line[:-1] + " "
                continue
            stripped = line.strip()
            if not stripped or stripped[0] in "#;":
                continue
            if stripped.startswith("[") and stripped.endswith("]"):
                current = sections.setdefault(stripped[1:-1], {})
                continue
            key, _, value = stripped.partition("=")
            if current is None:
                fail(f"{path}: {stripped!r} before any [section]")
            current.setdefault(key.strip(), []).append(value.strip())
    return sections


def one(service, key, path):
    values = service.get(key, [])
    if len(values) != 1 or not values[0]:
        fail(f"{path}: want exactly one {key}=, got {values}")
    return values[0]


def environment_file(path):
    """VAR=value lines of an EnvironmentFile= (comments and blank lines skipped)."""
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            key, _, value = line.partition("=")
            env[key.strip()] = " ".join(shlex.split(value))
    return env


def service_command(root, port):
    """The command line that starts the unit as systemd would, run from the host: chroot, then
    setpriv to User=/Group= with no new privileges, then the unit's environment, then
    WorkingDirectory= and ExecStart=."""
    path = root + UNIT
    service = parse_unit(path)["Service"]
    exec_start = one(service, "ExecStart", path)
    if exec_start[0] in "-@+!:" or "$" in exec_start or "%" in exec_start:
        fail(f"{path}: ExecStart={exec_start} uses a prefix, a variable or a specifier that this "
             "test does not expand")
    argv = shlex.split(exec_start)
    user = one(service, "User", path)
    group = service.get("Group", [user])[-1]
    workdir = service.get("WorkingDirectory", ["/"])[-1].lstrip("-")

    home = run(["chroot", root, "getent", "passwd", user]).strip().split(":")[5]
    env = {"PATH": SYSTEMD_PATH, "HOME": home, "USER": user, "LOGNAME": user,
           "SHELL": "/usr/sbin/nologin"}
    for value in service.get("Environment", []):
        for assignment in shlex.split(value):
            key, _, val = assignment.partition("=")
            env[key] = val
    for value in service.get("EnvironmentFile", []):
        optional = value.startswith("-")
        file = root + value.lstrip("-")
        if os.path.exists(file):
            env.update(environment_file(file))
        elif not optional:
            fail(f"{path}: EnvironmentFile={value} does not exist")
    env["ESPY_LISTEN"] = f"127.0.0.1:{port}"

    no_new_privs = service.get("NoNewPrivileges", ["no"])[-1] in ("yes", "true", "1")
    return ["chroot", root, "setpriv", f"--reuid={user}", f"--regid={group}", "--init-groups",
            *(["--no-new-privs"] if no_new_privs else []),
            "env", "-i", *[f"{k}={v}" for k, v in env.items()],
            "sh", "-c", 'cd "$0" && exec "$@"', workdir, *argv]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthz(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
            return r.status
    except (urllib.error.URLError, ConnectionError, OSError):
        return None


# --- the test --------------------------------------------------------------------------------

def package_of(path):
    """The package that installed `path`, a library as ldd names it. With merged /usr, dpkg
    knows a file by the path in its package (/lib/... or /usr/lib/...), which may be neither
    the one ldd gives nor its real path: try both, with and without /usr."""
    candidates = []
    for p in (path, os.path.realpath(path)):
        candidates += [p, p[len("/usr"):] if p.startswith("/usr/") else "/usr" + p]
    for candidate in candidates:
        result = subprocess.run(["dpkg", "-S", candidate], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        if result.returncode == 0:
            return result.stdout.split(":")[0]
    fail(f"dpkg -S finds no package for {path} (tried {candidates})")


def check_depends(deb, binary):
    """Every library in the binary's NEEDED entries belongs to a package that Depends names."""
    depends = run(["dpkg-deb", "-f", deb, "Depends"])
    named = {re.split(r"[\s(]", d.strip())[0] for d in depends.split(",")}
    needed = re.findall(r"NEEDED\s+(\S+)", run(["objdump", "-p", binary]))
    paths = dict(re.findall(r"^\s*(\S+) => (\S+)", run(["ldd", binary]), re.M))
    if not needed:
        fail(f"objdump -p {binary} lists no NEEDED libraries")
    for lib in needed:
        if lib not in paths:
            fail(f"ldd {binary} does not resolve {lib}")
        owner = package_of(paths[lib])
        # A shlibs file may name a virtual package the owner provides (libspdlog1.10-fmt9).
        provides = run(["dpkg-query", "-W", "-f=${Provides}", owner])
        names = {owner} | {re.split(r"[\s(]", p.strip())[0] for p in provides.split(",")}
        if not names & named:
            fail(f"{lib} ({paths[lib]}) is from {owner} (provides: {provides or 'nothing'}), "
                 f"which Depends does not name: {depends}")
    log(f"Depends names the packages of all {len(needed)} libraries: {depends.strip()}")


def check_installed(root):
    passwd = run(["chroot", root, "getent", "passwd", "espy"]).strip().split(":")
    if int(passwd[2]) >= 1000 or passwd[5] != "/var/lib/espy" or "nologin" not in passwd[6]:
        fail(f"want a system user espy (uid < 1000, home /var/lib/espy, no login), got {passwd}")
    run(["chroot", root, "getent", "group", "espy"])
    data = os.stat(root + "/var/lib/espy")
    if data.st_uid != int(passwd[2]) or data.st_mode & 0o7777 != 0o750:
        fail(f"/var/lib/espy: want owner espy, mode 0750, got uid {data.st_uid}, "
             f"mode {oct(data.st_mode & 0o7777)}")
    conffiles = run(["chroot", root, "dpkg-query", "-W", "-f=${Conffiles}", "espy"])
    for conffile in ("/etc/espy/espy.yaml", "/etc/default/espy"):
        if not os.path.isfile(root + conffile) or conffile not in conffiles:
            fail(f"{conffile}: want an installed conffile; dpkg lists: {conffiles.strip()}")
    if os.stat(root + "/etc/default/espy").st_mode & 0o077:
        fail("/etc/default/espy (secrets) must be readable by root only")
    service = parse_unit(root + UNIT)
    for key, want in (("Restart", "on-failure"), ("User", "espy"), ("NoNewPrivileges", "yes"),
                      ("ProtectSystem", "strict"), ("ReadWritePaths", "/var/lib/espy")):
        if service["Service"].get(key, [None])[-1] != want:
            fail(f"{UNIT}: want {key}={want}, got {service['Service'].get(key)}")
    man = run(["sh", "-c", f"gzip -dc {root}/usr/share/man/man1/espy.1.gz"])
    # The title from help2man, and the serve command's flags from its --help.
    for want in (".TH ESPY \"1\"", "espy serve", r"\-\-data\-dir", r"\-\-retention"):
        if want not in man:
            fail(f"/usr/share/man/man1/espy.1.gz lacks {want!r}")
    run(["chroot", root, "espy", "check-config", "/etc/espy/espy.yaml"])
    verify = run(["chroot", root, "dpkg", "--verify", "espy"])
    if verify.strip():
        fail(f"dpkg --verify espy: {verify}")
    log("user, group, /var/lib/espy, conffiles, unit and man page are in place")


def start_service(root):
    port = free_port()
    cmd = service_command(root, port)
    log(f"starting the unit's command line: {shlex.join(cmd)}")
    server_log = open(os.path.join(root, "tmp", "espy.log"), "w+")
    proc = subprocess.Popen(cmd, stdout=server_log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + HEALTH_TIMEOUT
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            status = healthz(port)
            if status == 200:
                break
            time.sleep(0.1)
        if status != 200:
            server_log.seek(0)
            fail(f"/healthz on port {port}: want 200, got {status}; exit {proc.poll()}; "
                 f"log:\n{server_log.read()[-4000:]}")
        log(f"/healthz answered 200 on 127.0.0.1:{port}")
        with open(f"/proc/{proc.pid}/status") as f:
            uids = re.search(r"^Uid:\s+(\d+)", f.read(), re.M).group(1)
        espy_uid = run(["chroot", root, "id", "-u", "espy"]).strip()
        if uids != espy_uid:
            fail(f"the server runs as uid {uids}, want espy ({espy_uid})")
        if not os.listdir(root + "/var/lib/espy"):
            fail("/var/lib/espy is empty while the server runs: the data went elsewhere")
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=STOP_TIMEOUT)
        if code != 0:
            server_log.seek(0)
            fail(f"SIGTERM: want exit 0, got {code}; log:\n{server_log.read()[-4000:]}")
        log(f"stopped with SIGTERM, exit 0; /var/lib/espy holds "
            f"{sorted(os.listdir(root + '/var/lib/espy'))}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        server_log.close()


def main():
    if os.geteuid() != 0:
        print("package_test: skipped: needs root (debootstrap, chroot, mount)")
        return 77
    binary = os.environ.get("ESPY_BIN") or os.path.join(REPO_ROOT, "build", "espy")
    work = os.path.realpath(os.environ.get("ESPY_PACKAGE_WORK")
                           or os.path.join(REPO_ROOT, "build", "tests", "package"))
    cache = os.path.join(work, "cache")
    os.makedirs(work, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # runs the atexit cleanup
    # Left by a run that was killed (a CTest timeout): the pid in the name is gone.
    for stale in glob.glob(os.path.join(work, "root.*")) + glob.glob(
            os.path.join(cache, "debootstrap.*")):
        if not os.path.exists(f"/proc/{stale.rsplit('.', 1)[1]}"):
            log(f"removing {stale}, left by an earlier run")
            remove_chroot(stale)
    for partial in glob.glob(os.path.join(cache, "*.tar.*")):
        if not os.path.exists(f"/proc/{partial.rsplit('.', 1)[1]}"):
            os.remove(partial)

    # 1. The package.
    started = time.monotonic()
    deb = run([os.path.join(REPO_ROOT, "packaging", "build-deb"), binary,
               os.path.join(work, "deb")]).strip().splitlines()[-1]
    log(f"built {deb} in {time.monotonic() - started:.0f}s")
    check_depends(deb, binary)

    # 2. The chroot, from this machine's mirror.
    sources = [(uri, suite, comps) for uri, suite, comps in apt_sources()
               if suite == SUITE or suite.startswith(SUITE + "-")]
    mirrors = [uri for uri, suite, _ in sources if suite == SUITE]
    if not mirrors:
        fail(f"no `deb` entry for {SUITE} in this machine's apt sources (/etc/apt)")
    proxy = apt_proxy()
    tarball = base_tarball(cache, mirrors[0], proxy)
    root = os.path.join(work, f"root.{os.getpid()}")
    atexit.register(remove_chroot, root)
    os.makedirs(root)
    run(["tar", "-C", root, "--numeric-owner", "-xf", tarball])
    with open(root + "/etc/apt/sources.list", "w") as f:
        for uri, suite, comps in sources:
            f.write(f"deb {uri} {suite} {' '.join(comps) or 'main'}\n")
    if proxy:
        with open(root + "/etc/apt/apt.conf.d/01proxy", "w") as f:
            f.write(f'Acquire::http::Proxy "{proxy}";\n')
    shutil.copy("/etc/resolv.conf", root + "/etc/resolv.conf")
    run(["mount", "-t", "proc", "proc", root + "/proc"])

    # 3. apt-get install ./espy_*.deb, with the .debs of earlier runs as apt's cache.
    archives = os.path.join(cache, "archives")
    os.makedirs(archives, exist_ok=True)
    for cached in glob.glob(os.path.join(archives, "*.deb")):
        shutil.copy(cached, root + "/var/cache/apt/archives/")
    started = time.monotonic()
    in_chroot(root, "apt-get", "update", "-q")
    shutil.copy(deb, root + "/tmp/")
    in_chroot(root, "sh", "-c", f"cd /tmp && apt-get install -y -q --no-install-recommends "
                                f"./{os.path.basename(deb)}")
    log(f"apt-get installed {os.path.basename(deb)} and its Depends in "
        f"{time.monotonic() - started:.0f}s")
    for fetched in glob.glob(root + "/var/cache/apt/archives/*.deb"):
        if not os.path.basename(fetched).startswith("espy_"):
            shutil.copy(fetched, archives)

    # 4. What the package put in place; 5. the service.
    check_installed(root)
    start_service(root)

    # 6. Remove keeps the config and the data; purge removes them.
    in_chroot(root, "apt-get", "remove", "-y", "-q", "espy")
    for kept in ("/etc/espy/espy.yaml", "/etc/default/espy", "/var/lib/espy/wal"):
        if not os.path.lexists(root + kept):
            fail(f"apt-get remove espy deleted {kept}; only purge may")
    if os.path.lexists(root + "/usr/bin/espy"):
        fail("apt-get remove espy left /usr/bin/espy")
    # Masked, as debhelper does, so that an enabled unit does not start a removed binary.
    mask = root + "/etc/systemd/system/espy.service"
    if not os.path.islink(mask) or os.readlink(mask) != "/dev/null":
        fail("apt-get remove espy did not mask espy.service (/etc/systemd/system/espy.service)")
    in_chroot(root, "apt-get", "purge", "-y", "-q", "espy")
    # /etc/systemd/system/espy.service: the mask that remove leaves.
    for gone in ("/etc/espy/espy.yaml", "/etc/default/espy", "/var/lib/espy", "/usr/bin/espy",
                 UNIT, "/etc/systemd/system/espy.service"):
        if os.path.lexists(root + gone):
            fail(f"apt-get purge espy left {gone}")
    log("apt-get remove kept the config and data; purge removed them")
    log("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
