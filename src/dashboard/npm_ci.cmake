# Runs `npm ci` in WEB_DIR unless node_modules was installed after the last
# change to package-lock.json (npm writes node_modules/.package-lock.json),
# so several build directories sharing web/ do not reinstall each time.
# Usage: cmake -DWEB_DIR=... -DNPM=... -DSTAMP=... -P npm_ci.cmake
set(lock ${WEB_DIR}/package-lock.json)
set(installed ${WEB_DIR}/node_modules/.package-lock.json)
set(fresh FALSE)
if(EXISTS ${installed} AND ${installed} IS_NEWER_THAN ${lock})
  set(fresh TRUE)
endif()
if(NOT fresh)
  execute_process(COMMAND ${NPM} ci --no-audit --no-fund --loglevel=error
                  WORKING_DIRECTORY ${WEB_DIR} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "npm ci in ${WEB_DIR} failed (${rc}); the dashboard needs its npm packages")
  endif()
endif()
file(TOUCH ${STAMP})
