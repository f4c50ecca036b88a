
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/main/autograd/node.cpp" "CMakeFiles/scconv.dir/autograd/node.cpp.o" "gcc" "CMakeFiles/scconv.dir/autograd/node.cpp.o.d"
  "/work/main/autograd/ops_elementwise.cpp" "CMakeFiles/scconv.dir/autograd/ops_elementwise.cpp.o" "gcc" "CMakeFiles/scconv.dir/autograd/ops_elementwise.cpp.o.d"
  "/work/main/autograd/ops_linalg.cpp" "CMakeFiles/scconv.dir/autograd/ops_linalg.cpp.o" "gcc" "CMakeFiles/scconv.dir/autograd/ops_linalg.cpp.o.d"
  "/work/main/autograd/ops_loss.cpp" "CMakeFiles/scconv.dir/autograd/ops_loss.cpp.o" "gcc" "CMakeFiles/scconv.dir/autograd/ops_loss.cpp.o.d"
  "/work/main/autograd/ops_norm.cpp" "CMakeFiles/scconv.dir/autograd/ops_norm.cpp.o" "gcc" "CMakeFiles/scconv.dir/autograd/ops_norm.cpp.o.d"
  "/work/main/autograd/ops_reduce.cpp" "CMakeFiles/scconv.dir/autograd/ops_reduce.cpp.o" "gcc" "CMakeFiles/scconv.dir/autograd/ops_reduce.cpp.o.d"
  "/work/main/autograd/ops_shape.cpp" "CMakeFiles/scconv.dir/autograd/ops_shape.cpp.o" "gcc" "CMakeFiles/scconv.dir/autograd/ops_shape.cpp.o.d"
  "/work/main/core/cpu/dnnl.cpp" "CMakeFiles/scconv.dir/core/cpu/dnnl.cpp.o" "gcc" "CMakeFiles/scconv.dir/core/cpu/dnnl.cpp.o.d"
  "/work/main/core/cpu/elementwise.cpp" "CMakeFiles/scconv.dir/core/cpu/elementwise.cpp.o" "gcc" "CMakeFiles/scconv.dir/core/cpu/elementwise.cpp.o.d"
  "/work/main/core/cpu/norm.cpp" "CMakeFiles/scconv.dir/core/cpu/norm.cpp.o" "gcc" "CMakeFiles/scconv.dir/core/cpu/norm.cpp.o.d"
  "/work/main/core/cpu/reduce.cpp" "CMakeFiles/scconv.dir/core/cpu/reduce.cpp.o" "gcc" "CMakeFiles/scconv.dir/core/cpu/reduce.cpp.o.d"
  "/work/main/core/cpu/softmax.cpp" "CMakeFiles/scconv.dir/core/cpu/softmax.cpp.o" "gcc" "CMakeFiles/scconv.dir/core/cpu/softmax.cpp.o.d"
  "/work/main/core/dispatch.cpp" "CMakeFiles/scconv.dir/core/dispatch.cpp.o" "gcc" "CMakeFiles/scconv.dir/core/dispatch.cpp.o.d"
  "/work/main/core/file_io.cpp" "CMakeFiles/scconv.dir/core/file_io.cpp.o" "gcc" "CMakeFiles/scconv.dir/core/file_io.cpp.o.d"
  "/work/main/core/parallel.cpp" "CMakeFiles/scconv.dir/core/parallel.cpp.o" "gcc" "CMakeFiles/scconv.dir/core/parallel.cpp.o.d"
  "/work/main/core/reference/elementwise.cpp" "CMakeFiles/scconv.dir/core/reference/elementwise.cpp.o" "gcc" "CMakeFiles/scconv.dir/core/reference/elementwise.cpp.o.d"
  "/work/main/core/reference/linalg.cpp" "CMakeFiles/scconv.dir/core/reference/linalg.cpp.o" "gcc" "CMakeFiles/scconv.dir/core/reference/linalg.cpp.o.d"
  "/work/main/core/reference/norm.cpp" "CMakeFiles/scconv.dir/core/reference/norm.cpp.o" "gcc" "CMakeFiles/scconv.dir/core/reference/norm.cpp.o.d"
  "/work/main/core/reference/pool.cpp" "CMakeFiles/scconv.dir/core/reference/pool.cpp.o" "gcc" "CMakeFiles/scconv.dir/core/reference/pool.cpp.o.d"
  "/work/main/core/reference/reduce.cpp" "CMakeFiles/scconv.dir/core/reference/reduce.cpp.o" "gcc" "CMakeFiles/scconv.dir/core/reference/reduce.cpp.o.d"
  "/work/main/core/reference/softmax.cpp" "CMakeFiles/scconv.dir/core/reference/softmax.cpp.o" "gcc" "CMakeFiles/scconv.dir/core/reference/softmax.cpp.o.d"
  "/work/main/core/rng.cpp" "CMakeFiles/scconv.dir/core/rng.cpp.o" "gcc" "CMakeFiles/scconv.dir/core/rng.cpp.o.d"
  "/work/main/core/safetensors.cpp" "CMakeFiles/scconv.dir/core/safetensors.cpp.o" "gcc" "CMakeFiles/scconv.dir/core/safetensors.cpp.o.d"
  "/work/main/core/shape.cpp" "CMakeFiles/scconv.dir/core/shape.cpp.o" "gcc" "CMakeFiles/scconv.dir/core/shape.cpp.o.d"
  "/work/main/core/storage.cpp" "CMakeFiles/scconv.dir/core/storage.cpp.o" "gcc" "CMakeFiles/scconv.dir/core/storage.cpp.o.d"
  "/work/main/core/tensor.cpp" "CMakeFiles/scconv.dir/core/tensor.cpp.o" "gcc" "CMakeFiles/scconv.dir/core/tensor.cpp.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
