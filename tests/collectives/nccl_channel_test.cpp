// The nccl weight channel's path on one GPU (label gpu): a single-rank NCCL communicator moves a
// float32 model's weights bucket by bucket into a bfloat16 and a float32 copy on the device,
// exactly as a tutor rank unpacks them. Without a GPU the binary exits 77, which CTest reports as
// skipped, never as passed.
#define DOCTEST_CONFIG_IMPLEMENT
#include "collectives/nccl_channel.hpp"
#include "models/tensor/init_model.hpp"
#include "models/tensor/transformer.hpp"
#include "tests/support/torch_doctest.hpp"

#include <cstdio>

using namespace pedagogy;
using namespace pedagogy::models;

TEST_CASE("a single-rank NCCL communicator moves every weight into float32 and bfloat16 tutors") {
  const auto config = preset_config(model_family::qwen2, "tiny", 320);
  const at::Device gpu(at::kCUDA, 0);
  const auto source = transformer::random(config, 1, gpu, at::kFloat);
  for (const auto dtype : {at::kFloat, at::kBFloat16}) {
    auto tutor = transformer::random(config, 2, gpu, dtype);
    // 1000-byte buckets: many per tensor, most holding pieces of two tensors.
    const auto buckets =
      nccl_loopback(source.named_parameters(), tutor.named_parameters(), 0, 1000);
    CHECK(buckets > 100);
    const auto from = source.named_parameters();
    const auto to = tutor.named_parameters();
    for (size_t i = 0; i < from.size(); ++i) {
      CAPTURE(from[i].first);
      CHECK(at::equal(from[i].second.to(dtype), to[i].second));
    }
  }
}

int main(int argc, char** argv) {
  if (!nccl_usable()) {
    std::puts("skipped: no GPU visible to this process");
    return 77;
  }
  doctest::Context context(argc, argv);
  return context.run();
}
