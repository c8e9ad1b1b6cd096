# Finds the C++ Actor Framework 0.17 (Debian's libcaf-dev ships no CMake config).
# Hint: CAF_ROOT = prefix holding include/caf and lib[/x86_64-linux-gnu]/libcaf_core.so.
# Defines CAF_FOUND, CAF_VERSION and the targets CAF::core, CAF::io [, CAF::openssl], the same
# names CAF >= 0.18 exports itself, so an upgrade touches no target_link_libraries line.
include(FindPackageHandleStandardArgs)

find_path(CAF_INCLUDE_DIR caf/all.hpp HINTS ${CAF_ROOT} $ENV{CAF_ROOT} PATH_SUFFIXES include)
foreach(component core io openssl)
  string(TOUPPER ${component} upper)
  find_library(CAF_${upper}_LIBRARY NAMES caf_${component} libcaf_${component}.so.0.17.6
               HINTS ${CAF_ROOT} $ENV{CAF_ROOT} PATH_SUFFIXES lib lib/x86_64-linux-gnu)
endforeach()

if(CAF_INCLUDE_DIR AND EXISTS "${CAF_INCLUDE_DIR}/caf/config.hpp")
  # "#define CAF_VERSION 1706" means 0.17.6.
  file(STRINGS "${CAF_INCLUDE_DIR}/caf/config.hpp" caf_version_line REGEX "^#define CAF_VERSION [0-9]+")
  string(REGEX MATCH "[0-9]+" caf_version_number "${caf_version_line}")
  math(EXPR caf_major "${caf_version_number} / 10000")
  math(EXPR caf_minor "(${caf_version_number} / 100) % 100")
  math(EXPR caf_patch "${caf_version_number} % 100")
  set(CAF_VERSION "${caf_major}.${caf_minor}.${caf_patch}")
endif()

# core and io are always required; openssl is the one optional component
# (find_package(CAF COMPONENTS openssl); Debian's libcaf-dev brings libcaf-openssl0.17).
if(CAF_OPENSSL_LIBRARY)
  set(CAF_openssl_FOUND TRUE)
else()
  set(CAF_openssl_FOUND FALSE)
endif()
find_package_handle_standard_args(CAF
  REQUIRED_VARS CAF_INCLUDE_DIR CAF_CORE_LIBRARY CAF_IO_LIBRARY
  VERSION_VAR CAF_VERSION
  HANDLE_COMPONENTS
  REASON_FAILURE_MESSAGE "install libcaf-dev (Debian) or set CAF_ROOT to a prefix holding include/caf")

if(CAF_FOUND AND NOT TARGET CAF::core)
  find_package(Threads REQUIRED)
  add_library(CAF::core UNKNOWN IMPORTED)
  set_target_properties(CAF::core PROPERTIES IMPORTED_LOCATION "${CAF_CORE_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${CAF_INCLUDE_DIR}" INTERFACE_LINK_LIBRARIES Threads::Threads)
  add_library(CAF::io UNKNOWN IMPORTED)
  set_target_properties(CAF::io PROPERTIES IMPORTED_LOCATION "${CAF_IO_LIBRARY}"
    INTERFACE_LINK_LIBRARIES CAF::core)
  if(CAF_OPENSSL_LIBRARY)
    add_library(CAF::openssl UNKNOWN IMPORTED)
    set_target_properties(CAF::openssl PROPERTIES IMPORTED_LOCATION "${CAF_OPENSSL_LIBRARY}"
      INTERFACE_LINK_LIBRARIES CAF::io)
  endif()
endif()
mark_as_advanced(CAF_INCLUDE_DIR CAF_CORE_LIBRARY CAF_IO_LIBRARY CAF_OPENSSL_LIBRARY)
