file(REMOVE_RECURSE
  "CMakeFiles/test_torch.dir/test_main.cc.o"
  "CMakeFiles/test_torch.dir/test_main.cc.o.d"
  "CMakeFiles/test_torch.dir/test_torch.cpp.o"
  "CMakeFiles/test_torch.dir/test_torch.cpp.o.d"
  "test_torch"
  "test_torch.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang CXX)
  include(CMakeFiles/test_torch.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
