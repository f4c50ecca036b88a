
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/main/tests/test_main.cc" "tests/CMakeFiles/test_torch.dir/test_main.cc.o" "gcc" "tests/CMakeFiles/test_torch.dir/test_main.cc.o.d"
  "/work/main/tests/test_torch.cpp" "tests/CMakeFiles/test_torch.dir/test_torch.cpp.o" "gcc" "tests/CMakeFiles/test_torch.dir/test_torch.cpp.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  "/work/main/build/CMakeFiles/scconv.dir/DependInfo.cmake"
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
