// tests/test_safetensors.cpp: safetensors round trips, files written by PyTorch (the committed
// reference data), and malformed files rejected with messages naming the file and entry.
// Run: ./build/tests/test_safetensors
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/file_io.h"
#include "core/safetensors.h"
#include "hash_init.h"
#include "models/model_config.h"
#include "test_util.h"

using namespace scconv;
using doctest::Contains;

namespace {
std::string header_file(const std::string& json, const std::string& data = "") {
  std::string out(8, '\0');
  uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + json + data;
}
}  // namespace

TEST_CASE("round trip of every dtype, with metadata, through an atomic write") {
  std::map<std::string, Tensor> ts{
      {"w", Generator(1).normal({3, 4})},
      {"d", Tensor::from_vector<double>({1.5, -2}, {2})},
      {"labels", Tensor::from_vector<int64_t>({7, 9, 11}, {3})},
      {"img", Tensor::from_vector<uint8_t>({0, 255}, {1, 2})},
      {"scalar", Tensor::scalar(3.0)},
      {"strided", Tensor::from_vector<float>({1, 2, 3, 4}, {2, 2}).slice_view(1, 0, 1)}};
  std::string path = (std::filesystem::temp_directory_path() / "scconv_rt.safetensors").string();
  save_safetensors(path, ts, {{"epoch", "3"}});
  SafetensorsFile f = load_safetensors(path);
  CHECK(f.metadata.at("epoch") == "3");
  REQUIRE(f.tensors.size() == ts.size());
  for (auto& [k, t] : ts) {
    CAPTURE(k);
    CHECK(f.tensors.at(k).dtype() == t.dtype());
    CHECK(f.tensors.at(k).shape() == t.shape());
    CHECK(testing::mismatch(f.tensors.at(k), t, 0, 0).empty());
  }
  // No temporary files left beside the target.
  for (auto& e : std::filesystem::directory_iterator(std::filesystem::temp_directory_path()))
    CHECK(e.path().filename().string().find(".scconv_rt.safetensors.tmp") == std::string::npos);
  std::filesystem::remove(path);
}

TEST_CASE("reads files written by PyTorch") {
  SafetensorsFile f = load_safetensors(std::string(SCCONV_TEST_DATA) + "/torch_ops.safetensors");
  CHECK(f.tensors.size() > 200);
  CHECK(f.tensors.at("conv_3x3_p1_bias.in1").shape() == Shape{4, 3, 3, 3});
  CHECK(f.tensors.at("add_scalar_tensor.in1").dim() == 0);
}

TEST_CASE("reads a file written by the official safetensors library and loads it by name") {
  SafetensorsFile f = load_safetensors(std::string(SCCONV_TEST_DATA) + "/official.safetensors");
  CHECK(f.metadata.at("writer") == "safetensors.torch.save_file");
  CHECK(f.tensors.at("extra.f64").to_vector<double>() == std::vector<double>{0, 0.25, 0.5, 0.75, 1, 1.25});
  CHECK(f.tensors.at("extra.i64").to_vector<int64_t>() == std::vector<int64_t>{-3, 0, int64_t(1) << 40});
  CHECK(f.tensors.at("extra.u8").to_vector<uint8_t>() == std::vector<uint8_t>{0, 7, 128, 255});
  // The SCConv state dict loads strictly into our module: same names, dtypes and shapes.
  std::map<std::string, Tensor> state;
  for (auto& [k, v] : f.tensors)
    if (k.rfind("extra.", 0) != 0) state[k] = v;
  Generator g(0);
  SCConvOptions o = parse_model_config({{"arch", "resnet20"}, {"conv", "scconv"}, {"scconv", {{"sru", {{"groups", 4}}}}}}).scconv;
  SCConv m(16, 32, 2, o, g);
  m.load_state_dict(state, true, "official.safetensors");
  for (auto& [k, v] : m.state_dict())
    CHECK_MESSAGE(testing::mismatch(v, testing::hash_fill("official/" + k, v), 1e-6, 1e-7).empty(), k);
}

TEST_CASE("malformed files are clear errors naming the file and entry") {
  CHECK_THROWS_WITH_AS(parse_safetensors("abc", "f.st"), Contains("f.st: not a safetensors file"), Error);
  CHECK_THROWS_WITH_AS(parse_safetensors(header_file("{}").substr(0, 8) + "{", "f.st"), Contains("f.st: header length 2 exceeds"), Error);
  std::string huge(8, '\xff');
  CHECK_THROWS_WITH_AS(parse_safetensors(huge, "f.st"), Contains("exceeds the file size"), Error);
  CHECK_THROWS_WITH_AS(parse_safetensors(header_file("{nope"), "f.st"), Contains("f.st: header: invalid JSON"), Error);
  CHECK_THROWS_WITH_AS(parse_safetensors(header_file("[1]"), "f.st"), Contains("header does not start with '{'"), Error);
  CHECK_THROWS_WITH_AS(parse_safetensors(header_file(R"({"a":{"dtype":"F16","shape":[1],"data_offsets":[0,2]}})", "xx"), "f.st"),
                       Contains("f.st: tensor 'a': unsupported dtype \"F16\" (supported: F32, F64, BF16, I64, U8)"), Error);
  // BF16 is read (files written by PyTorch in bf16: tests/test_bf16.cpp)
  CHECK(parse_safetensors(header_file(R"({"a":{"dtype":"BF16","shape":[1],"data_offsets":[0,2]}})", std::string("\x40\x40", 2)), "f.st")
            .tensors.at("a").to(DType::F32).item() == 3.0);
  CHECK_THROWS_WITH_AS(parse_safetensors(header_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "1234"), "f.st"),
                       Contains("tensor 'a': data_offsets [0, 8] fall outside the 4 data bytes"), Error);
  CHECK_THROWS_WITH_AS(parse_safetensors(header_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", "12345678"), "f.st"),
                       Contains("span 8 bytes but float32(3,) needs 12"), Error);
  CHECK_THROWS_WITH_AS(parse_safetensors(header_file(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}})"), "f.st"),
                       Contains("bad dimension"), Error);
  CHECK_THROWS_WITH_AS(parse_safetensors(header_file(R"({"a":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,0]}})"), "f.st"),
                       Contains("too large"), Error);
  CHECK_THROWS_WITH_AS(parse_safetensors(header_file(R"({"a":{"shape":[1]}})"), "f.st"),
                       Contains("entry needs dtype, shape and data_offsets"), Error);
  CHECK_THROWS_WITH_AS(load_safetensors("/nonexistent/dir/w.safetensors"), Contains("cannot open '/nonexistent/dir/w.safetensors'"), Error);
}

TEST_CASE("as strict as the reference library: overlaps, gaps, trailing bytes, duplicate names, trailing JSON") {
  const std::string f32 = R"("dtype":"F32","shape":[1],)";
  auto two = [&](const char* a_off, const char* b_off) {
    return std::string("{\"a\":{") + f32 + "\"data_offsets\":" + a_off + "},\"b\":{" + f32 + "\"data_offsets\":" + b_off + "}}";
  };
  CHECK_NOTHROW(parse_safetensors(header_file(two("[0,4]", "[4,8]"), "12345678"), "f.st"));
  CHECK_NOTHROW(parse_safetensors(header_file(two("[4,8]", "[0,4]"), "12345678"), "f.st"));  // any order
  CHECK_THROWS_WITH_AS(parse_safetensors(header_file(two("[0,4]", "[2,6]"), "12345678"), "f.st"),
                       Contains("f.st: tensor 'b': data_offsets [2, 6] overlap the data of the tensor before it"), Error);
  CHECK_THROWS_WITH_AS(parse_safetensors(header_file(two("[0,4]", "[0,4]"), "1234"), "f.st"), Contains("overlap"), Error);
  CHECK_THROWS_WITH_AS(parse_safetensors(header_file(two("[0,4]", "[6,10]"), "1234567890"), "f.st"),
                       Contains("tensor 'b': data_offsets [6, 10] leave a gap after"), Error);
  CHECK_THROWS_WITH_AS(parse_safetensors(header_file(two("[0,4]", "[4,8]"), "123456789"), "f.st"),
                       Contains("f.st: 1 bytes after the last tensor's data"), Error);
  std::string dup = std::string("{\"a\":{") + f32 + "\"data_offsets\":[0,4]},\"a\":{" + f32 + "\"data_offsets\":[4,8]}}";
  CHECK_THROWS_WITH_AS(parse_safetensors(header_file(dup, "12345678"), "f.st"), Contains("duplicate key \"a\""), Error);
  std::string one = std::string("{\"a\":{") + f32 + "\"data_offsets\":[0,4]}}";
  CHECK_NOTHROW(parse_safetensors(header_file(one + "   ", "1234"), "f.st"));            // space padding: fine
  CHECK_THROWS_WITH_AS(parse_safetensors(header_file(one + " x", "1234"), "f.st"), Contains("invalid JSON"), Error);
  CHECK_THROWS_WITH_AS(parse_safetensors(header_file(one + std::string(3, '\0'), "1234"), "f.st"),
                       Contains("a NUL byte at offset"), Error);
  std::string meta = std::string("{\"__metadata__\":{\"k\":\"v\",\"k\":\"w\"},\"a\":{") + f32 + "\"data_offsets\":[0,4]}}";
  CHECK_THROWS_WITH_AS(parse_safetensors(header_file(meta, "1234"), "f.st"), Contains("duplicate key \"k\""), Error);
  std::string deep = "{\"__metadata__\":" + std::string(100, '[') + std::string(100, ']') + "}";
  CHECK_THROWS_WITH_AS(parse_safetensors(header_file(deep), "f.st"), Contains("nested deeper than 64 levels"), Error);
}

TEST_CASE("bounded reads: special files are refused, never read or waited on") {
  CHECK_THROWS_WITH_AS(load_safetensors("/dev/zero"), Contains("'/dev/zero' is a character device, not a regular file"), Error);
  CHECK_THROWS_WITH_AS(load_safetensors("/tmp"), Contains("'/tmp' is a directory"), Error);
  const std::string fifo = (std::filesystem::temp_directory_path() / ("scconv_fifo_" + std::to_string(::getpid()))).string();
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK_THROWS_WITH_AS(load_safetensors(fifo), Contains("is a FIFO (named pipe), not a regular file"), Error);  // no hang
  ::unlink(fifo.c_str());
  const std::string big = (std::filesystem::temp_directory_path() / ("scconv_big_" + std::to_string(::getpid()))).string();
  write_file_atomic(big, std::string(100, 'x'));
  CHECK_THROWS_WITH_AS(read_file(big, 99), Contains("100 bytes, more than the 99 this kind of file may have"), Error);
  bool checked = false;
  CHECK_THROWS_WITH_AS(read_file(big, 1000, [&](uint64_t n) { checked = true; SCCONV_CHECK(n % 3 == 0, "size " << n); }),
                       Contains("size 100"), Error);
  CHECK(checked);
  CHECK(read_file(big, 100).size() == 100);
  ::unlink(big.c_str());
}

TEST_CASE("a failed atomic write leaves the previous file intact") {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / "scconv_atomic";
  fs::create_directories(dir);
  std::string path = (dir / "w.safetensors").string();
  write_file_atomic(path, "old contents");
  fs::permissions(dir, fs::perms::owner_read | fs::perms::owner_exec);  // no new files allowed
  bool threw = false;
  try {
    write_file_atomic(path, "new contents");
  } catch (const Error&) {
    threw = true;
  }
  fs::permissions(dir, fs::perms::owner_all);
  // Root ignores directory permissions; then the write succeeds and is complete.
  CHECK(read_file(path, 1 << 20) == (threw ? "old contents" : "new contents"));
  fs::remove_all(dir);
}
