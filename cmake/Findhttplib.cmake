# Finds cpp-httplib (Debian's libcpp-httplib-dev ships a header, a compiled .so and a .pc file,
# but no CMake config). Defines httplib_FOUND, httplib_VERSION and the target httplib::httplib,
# the name upstream's own config exports.
include(FindPackageHandleStandardArgs)

find_path(HTTPLIB_INCLUDE_DIR httplib.h HINTS ${HTTPLIB_ROOT} $ENV{HTTPLIB_ROOT} PATH_SUFFIXES include)
find_library(HTTPLIB_LIBRARY NAMES cpp-httplib HINTS ${HTTPLIB_ROOT} $ENV{HTTPLIB_ROOT}
             PATH_SUFFIXES lib lib/x86_64-linux-gnu)
if(HTTPLIB_INCLUDE_DIR)
  file(STRINGS "${HTTPLIB_INCLUDE_DIR}/httplib.h" httplib_version_line
       REGEX "^#define CPPHTTPLIB_VERSION \"[0-9.]+\"")
  string(REGEX MATCH "[0-9]+\\.[0-9]+\\.[0-9]+" httplib_VERSION "${httplib_version_line}")
endif()

find_package_handle_standard_args(httplib
  REQUIRED_VARS HTTPLIB_INCLUDE_DIR HTTPLIB_LIBRARY
  VERSION_VAR httplib_VERSION
  REASON_FAILURE_MESSAGE "install libcpp-httplib-dev (Debian) or set HTTPLIB_ROOT")

if(httplib_FOUND AND NOT TARGET httplib::httplib)
  find_package(Threads REQUIRED)
  add_library(httplib::httplib UNKNOWN IMPORTED)
  # Debian's header is the split (declarations-only) one and its .so was built with OpenSSL, zlib
  # and brotli support; the header must see the same switches (from cpp-httplib.pc) or the class
  # layouts differ from the library's.
  set_target_properties(httplib::httplib PROPERTIES IMPORTED_LOCATION "${HTTPLIB_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${HTTPLIB_INCLUDE_DIR}" INTERFACE_LINK_LIBRARIES Threads::Threads
    INTERFACE_COMPILE_DEFINITIONS
      "CPPHTTPLIB_OPENSSL_SUPPORT;CPPHTTPLIB_ZLIB_SUPPORT;CPPHTTPLIB_BROTLI_SUPPORT")
endif()
mark_as_advanced(HTTPLIB_INCLUDE_DIR HTTPLIB_LIBRARY)
