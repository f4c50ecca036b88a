# CMake generated Testfile for 
# Source directory: /work/main/tests
# Build directory: /work/main/build/tests
# 
# This file includes the relevant testing commands required for 
# testing this directory and lists subdirectories to be tested as well.
add_test([=[test_gradcheck]=] "/work/main/build/tests/test_gradcheck")
set_tests_properties([=[test_gradcheck]=] PROPERTIES  ENVIRONMENT "OMP_NUM_THREADS=2" _BACKTRACE_TRIPLES "/work/main/tests/CMakeLists.txt;10;add_test;/work/main/tests/CMakeLists.txt;0;")
add_test([=[test_reference]=] "/work/main/build/tests/test_reference")
set_tests_properties([=[test_reference]=] PROPERTIES  ENVIRONMENT "OMP_NUM_THREADS=2" _BACKTRACE_TRIPLES "/work/main/tests/CMakeLists.txt;10;add_test;/work/main/tests/CMakeLists.txt;0;")
add_test([=[test_torch]=] "/work/main/build/tests/test_torch")
set_tests_properties([=[test_torch]=] PROPERTIES  ENVIRONMENT "OMP_NUM_THREADS=2" _BACKTRACE_TRIPLES "/work/main/tests/CMakeLists.txt;10;add_test;/work/main/tests/CMakeLists.txt;0;")
