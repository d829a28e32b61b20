# Third-party dependencies other than LibTorch. Everything here comes from Debian/Ubuntu packages
# installed by ci/setup.sh. OpenCV and SQLite may be provided from a carried folder on machines that
# lack the -dev packages (the GPU box): set ABLATE_EXTRA_PREFIX to that folder.
if(ABLATE_EXTRA_PREFIX)
  list(PREPEND CMAKE_PREFIX_PATH ${ABLATE_EXTRA_PREFIX}/usr ${ABLATE_EXTRA_PREFIX})
  include_directories(SYSTEM ${ABLATE_EXTRA_PREFIX}/usr/include)
endif()

find_package(Threads REQUIRED)
find_package(fmt REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(nlohmann_json 3.9 REQUIRED)
# Config choices are enums written as their words (harness/config.h name_of); nlohmann's default
# would write an enum as its integer, silently. From 3.11 this makes that a compile error.
add_compile_definitions(JSON_DISABLE_ENUM_SERIALIZATION=1)
find_package(CLI11 QUIET CONFIG)
if(NOT CLI11_FOUND)
  find_path(CLI11_INCLUDE_DIR CLI/CLI.hpp REQUIRED)
  add_library(CLI11::CLI11 INTERFACE IMPORTED)
  target_include_directories(CLI11::CLI11 INTERFACE ${CLI11_INCLUDE_DIR})
endif()

find_package(SQLite3 QUIET)
if(NOT SQLite3_FOUND)
  # GPU box: header carried, runtime libsqlite3.so.0 from the system.
  find_path(SQLite3_INCLUDE_DIR sqlite3.h REQUIRED)
  find_library(SQLite3_LIBRARY NAMES sqlite3 libsqlite3.so.0 REQUIRED)
  add_library(SQLite::SQLite3 UNKNOWN IMPORTED)
  set_target_properties(SQLite::SQLite3 PROPERTIES IMPORTED_LOCATION ${SQLite3_LIBRARY}
                        INTERFACE_INCLUDE_DIRECTORIES ${SQLite3_INCLUDE_DIR})
endif()

# OpenCV decodes images (datasets/), checks HOG against HOGDescriptor (tests) and writes figures
# (reports/). Without it ablate still trains and benchmarks from packed shards.
find_package(OpenCV QUIET COMPONENTS core imgproc imgcodecs objdetect)
if(OpenCV_FOUND)
  set(ABLATE_HAVE_OPENCV 1)
  message(STATUS "ablate: OpenCV ${OpenCV_VERSION}")
else()
  set(ABLATE_HAVE_OPENCV 0)
  message(STATUS "ablate: OpenCV not found: image decoding, packing and figures disabled")
endif()

# Catch2: v3 (Ubuntu) ships Catch2WithMain and split headers; v2 (Debian 12) one header.
find_package(Catch2 QUIET)
if(Catch2_FOUND AND Catch2_VERSION VERSION_GREATER_EQUAL 3)
  set(ABLATE_CATCH2_V3 1)
else()
  set(ABLATE_CATCH2_V3 0)
endif()
