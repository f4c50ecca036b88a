CMakeFiles/bench_ops.dir/bench/bench_ops.cpp.o: \
 /work/main/bench/bench_ops.cpp /usr/include/stdc-predef.h
