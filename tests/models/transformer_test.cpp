// Decoder models: the KV cache against the full forward, padding, saving and loading, and each
// family's distinctive feature (the weights loading refuses: transformer_load_test.cpp).
#include "models/serving/packed_forward.hpp"
#include "models/tensor/transformer.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/tiny_config.hpp"
#include "tests/support/torch_doctest.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

namespace fs = std::filesystem;
using namespace pedagogy::models;

using pedagogy::testing::tiny_config;

namespace {

const model_family families[] = {model_family::qwen2, model_family::qwen3, model_family::llama};

at::Tensor random_ids(int64_t B, int64_t T, int64_t V, uint64_t seed) {
  at::Generator g = at::make_generator<at::CPUGeneratorImpl>(seed);
  return at::randint(V, {B, T}, g, at::kLong);
}

double max_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kFloat) - b.to(at::kFloat)).abs().max().item<double>();
}

struct temp_dir : pedagogy::testing::temp_dir {
  explicit temp_dir(const std::string& name)
    : pedagogy::testing::temp_dir("tf_" + name, start::absent) {}
};

} // namespace

TEST_CASE("incremental decoding with the KV cache matches the full forward (fp32, 1e-5)") {
  for (auto family : families) {
    CAPTURE(to_string(family));
    auto model = transformer::random(tiny_config(family), 7, at::kCPU, at::kFloat);
    at::Tensor ids = random_ids(2, 12, 97, 1);
    at::Tensor full = model.forward(ids); // [2, 12, V]

    kv_cache cache = model.empty_cache();
    std::vector<at::Tensor> steps{model.forward(ids.narrow(1, 0, 5), {}, {}, &cache)};
    for (int64_t t = 5; t < 12; ++t)
      steps.push_back(model.forward(ids.narrow(1, t, 1), {}, {}, &cache));
    CHECK(cache.length() == 12);
    const double diff = max_diff(at::cat(steps, 1), full);
    CHECK(diff <= 1e-5);
  }
}

TEST_CASE("packed forwards over a paged KV pool match the full forward (fp32, 1e-5)") {
  // Three sequences in one pool of 4-token blocks, fed prompt chunks and single rows so that
  // their blocks interleave (reads through block tables, scattered writes, decode rows attended
  // together and alone), then a fork whose first write copies the block it shares. Every row's
  // logits are held against the full forward of its whole sequence.
  for (auto family : families) {
    CAPTURE(to_string(family));
    auto model = transformer::random(tiny_config(family), 7, at::kCPU, at::kFloat);
    at::NoGradGuard no_grad;
    auto pool = new_kv_pool(model, /*block_tokens=*/4);
    at::Tensor ids = random_ids(4, 16, 97, 3); // sequences a, b, c, and d: b's fork after 9
    ids[3].narrow(0, 0, 9).copy_(ids[1].narrow(0, 0, 9));
    const at::Tensor full = model.forward(ids); // [4, 16, V]
    std::vector<sequence_kv> kv;
    for (int i = 0; i < 3; ++i)
      kv.emplace_back(pool);
    double worst = 0;
    int64_t rows_checked = 0;
    auto run = [&](const std::vector<std::pair<int, int64_t>>& parts) { // (sequence, tokens)
      std::vector<int64_t> tokens, positions, sequence_of;
      std::vector<packed_segment> segments;
      for (auto [i, T] : parts) {
        auto& cache = kv[static_cast<size_t>(i)];
        segments.push_back({&cache, static_cast<int64_t>(tokens.size()), T});
        for (int64_t t = cache.length(); t < cache.length() + T; ++t) {
          tokens.push_back(ids[i][t].item<int64_t>());
          positions.push_back(t);
          sequence_of.push_back(i);
        }
      }
      at::Tensor logits = model.logits(
        forward_packed(model, at::tensor(tokens), at::tensor(positions), segments)); // [N, V]
      for (size_t r = 0; r < tokens.size(); ++r, ++rows_checked)
        worst = std::max(
          worst, max_diff(logits[static_cast<int64_t>(r)], full[sequence_of[r]][positions[r]]));
    };
    run({{0, 5}, {1, 3}});         // a: blocks 0-1, b: 2
    run({{0, 6}, {1, 1}, {2, 2}}); // a's chunk fills block 1 and takes 3; b decodes alone
    CHECK(kv[0].blocks() == std::vector<int64_t>{0, 1, 3});
    run({{0, 1}, {1, 1}, {2, 1}}); // three decode rows together
    run({{1, 4}});
    kv.push_back(kv[1].fork()); // d shares b's 9 tokens: blocks 0-1 full, block 2 partial
    CHECK(kv[3].blocks() == kv[1].blocks());
    const int64_t before = pool->blocks_used();
    run({{1, 1}, {3, 1}, {0, 1}, {2, 1}});    // b writes first and copies the shared block
    CHECK(pool->blocks_used() == before + 2); // that copy, and a's 13th token opens a block
    CHECK(kv[3].blocks()[1] == kv[1].blocks()[1]);
    CHECK(kv[3].blocks()[2] != kv[1].blocks()[2]);
    run({{3, 3}, {1, 2}});
    for (int step = 0; step < 3; ++step)
      run({{0, 1}, {1, 1}, {2, 1}, {3, 1}});
    CHECK(rows_checked == 16 + 15 + 7 + 7);
    CHECK(worst <= 1e-5);
  }
}

TEST_CASE("padding changes nothing for the real tokens, left or right") {
  for (auto family : families) {
    CAPTURE(to_string(family));
    auto model = transformer::random(tiny_config(family), 3, at::kCPU, at::kFloat);
    at::Tensor a = random_ids(1, 9, 97, 2);
    at::Tensor b = random_ids(1, 5, 97, 3);
    at::Tensor alone_a = model.forward(a);
    at::Tensor alone_b = model.forward(b);

    // Right padding: b is followed by 4 pad tokens.
    at::Tensor ids = at::cat({a, at::cat({b, at::zeros({1, 4}, at::kLong)}, 1)}, 0);
    at::Tensor mask = at::ones({2, 9}, at::kLong);
    mask[1].narrow(0, 5, 4).zero_();
    at::Tensor batched = model.forward(ids, mask);
    CHECK(max_diff(batched[0], alone_a[0]) <= 1e-5);
    CHECK(max_diff(batched[1].narrow(0, 0, 5), alone_b[0]) <= 1e-5);

    // Left padding: positions count only the real tokens.
    at::Tensor left_ids = at::cat({a, at::cat({at::zeros({1, 4}, at::kLong), b}, 1)}, 0);
    at::Tensor left_mask = at::ones({2, 9}, at::kLong);
    left_mask[1].narrow(0, 0, 4).zero_();
    at::Tensor left = model.forward(left_ids, left_mask, positions_from_mask(left_mask));
    CHECK(max_diff(left[1].narrow(0, 4, 5), alone_b[0]) <= 1e-5);
    CHECK_FALSE(at::isnan(left).any().item<bool>()); // padding queries stay finite
  }
}

TEST_CASE("the fused attention equals the readable reference") {
  at::manual_seed(0);
  at::Tensor q = at::randn({2, 4, 5, 8});
  at::Tensor k = at::randn({2, 4, 7, 8});
  at::Tensor v = at::randn({2, 4, 7, 8});
  at::Tensor mask = at::zeros({2, 1, 5, 7});
  mask.narrow(3, 5, 2).fill_(-1e30);
  CHECK(max_diff(scaled_dot_product(q, k, v, mask), reference_attention(q, k, v, mask)) <= 1e-5);
}

TEST_CASE("saving and loading gives bit-identical logits, sharded or not") {
  for (auto family : families) {
    CAPTURE(to_string(family));
    temp_dir dir("save");
    auto model = transformer::random(tiny_config(family), 11, at::kCPU, at::kFloat);
    at::Tensor ids = random_ids(1, 6, 97, 4);
    model.save(dir.path);
    auto loaded = transformer::load(dir.path, at::kCPU, at::kFloat);
    CHECK(at::equal(loaded.forward(ids), model.forward(ids)));
    CHECK(loaded.config().to_json() == model.config().to_json());

    model.save(dir.path, /*max_shard_bytes=*/20000);
    CHECK(fs::exists(dir.path / "model.safetensors.index.json"));
    CHECK(at::equal(transformer::load(dir.path, at::kCPU, at::kFloat).forward(ids),
                    model.forward(ids)));
  }
}

TEST_CASE("random initialisation is seeded") {
  auto a = transformer::random(tiny_config(model_family::qwen2), 5, at::kCPU, at::kFloat);
  auto b = transformer::random(tiny_config(model_family::qwen2), 5, at::kCPU, at::kFloat);
  auto c = transformer::random(tiny_config(model_family::qwen2), 6, at::kCPU, at::kFloat);
  at::Tensor ids = random_ids(1, 4, 97, 0);
  CHECK(at::equal(a.forward(ids), b.forward(ids)));
  CHECK_FALSE(at::equal(a.forward(ids), c.forward(ids)));
}

TEST_CASE("each family's distinctive parts are there and matter") {
  auto parameter = [](const transformer& m, const std::string& name) {
    for (const auto& [n, t] : m.named_parameters())
      if (n == name)
        return t;
    return at::Tensor();
  };
  at::Tensor ids = random_ids(1, 6, 97, 5);
  at::NoGradGuard no_grad;

  // Qwen2: biases on q, k and v.
  auto qwen2 = transformer::random(tiny_config(model_family::qwen2), 1, at::kCPU, at::kFloat);
  at::Tensor bias = parameter(qwen2, "model.layers.0.self_attn.q_proj.bias");
  REQUIRE(bias.defined());
  at::Tensor before = qwen2.forward(ids);
  bias.fill_(0.5);
  CHECK(max_diff(qwen2.forward(ids), before) > 1e-4);

  // Qwen3: RMSNorm of q and k per head, no biases.
  auto qwen3 = transformer::random(tiny_config(model_family::qwen3), 1, at::kCPU, at::kFloat);
  CHECK_FALSE(parameter(qwen3, "model.layers.0.self_attn.q_proj.bias").defined());
  at::Tensor q_norm = parameter(qwen3, "model.layers.0.self_attn.q_norm.weight");
  REQUIRE(q_norm.defined());
  before = qwen3.forward(ids);
  q_norm.mul_(3.0);
  CHECK(max_diff(qwen3.forward(ids), before) > 1e-4);

  // Tied embeddings: no lm_head parameter, and the head reads the embedding.
  CHECK_FALSE(parameter(qwen3, "lm_head.weight").defined());
  CHECK(parameter(transformer::random(tiny_config(model_family::llama), 1, at::kCPU, at::kFloat),
                  "lm_head.weight")
          .defined());

  // Llama-3.1 RoPE scaling: long wavelengths divided by the factor, short ones untouched.
  model_config plain = tiny_config(model_family::llama);
  plain.rope_scaling.llama3 = false;
  at::Tensor base = rope_inverse_frequencies(plain);
  at::Tensor scaled = rope_inverse_frequencies(tiny_config(model_family::llama));
  CHECK(scaled[0].item<float>() == doctest::Approx(base[0].item<float>()));       // wavelength 2*pi
  CHECK(scaled[3].item<float>() == doctest::Approx(base[3].item<float>() / 8.0)); // very long
}

TEST_CASE("rotary embeddings rotate each pair of halves by position x frequency") {
  model_config c = tiny_config(model_family::qwen2);
  c.head_dim = 4;
  c.rope_theta = 100.0;
  at::Tensor inv = rope_inverse_frequencies(c); // [1, 1/10]
  CHECK(inv[1].item<float>() == doctest::Approx(0.1f));
  auto tables = rope_for_positions(inv, at::full({1, 1}, 3, at::kLong), at::kFloat);
  at::Tensor x = at::tensor({1.0f, 2.0f, 3.0f, 4.0f}).view({1, 1, 1, 4});
  at::Tensor y = apply_rope(x, tables).view({4});
  // Pair (x0, x2) turns by 3 rad, pair (x1, x3) by 0.3 rad.
  CHECK(y[0].item<float>() == doctest::Approx(1 * std::cos(3.0) - 3 * std::sin(3.0)));
  CHECK(y[2].item<float>() == doctest::Approx(3 * std::cos(3.0) + 1 * std::sin(3.0)));
  CHECK(y[1].item<float>() == doctest::Approx(2 * std::cos(0.3) - 4 * std::sin(0.3)));
  CHECK(y[3].item<float>() == doctest::Approx(4 * std::cos(0.3) + 2 * std::sin(0.3)));
}

TEST_CASE("bf16 weights run and stay close to fp32") {
  auto fp32 = transformer::random(tiny_config(model_family::qwen2), 9, at::kCPU, at::kFloat);
  auto bf16 = transformer::random(tiny_config(model_family::qwen2), 9, at::kCPU, at::kBFloat16);
  at::Tensor ids = random_ids(1, 8, 97, 6);
  at::Tensor out = bf16.forward(ids);
  CHECK(std::string(at::toString(out.scalar_type())) == "BFloat16");
  CHECK(max_diff(out, fp32.forward(ids)) <= 0.05); // logits here are O(0.1)
}

TEST_CASE("config.json in the v4 and the v5 RoPE layout gives the same logits") {
  temp_dir dir("rope_layout");
  auto model = transformer::random(tiny_config(model_family::llama), 12, at::kCPU, at::kFloat);
  model.save(dir.path);
  at::Tensor ids = random_ids(1, 40, 97, 8);
  const at::Tensor v4 = transformer::load(dir.path, at::kCPU, at::kFloat).forward(ids);
  CHECK(at::equal(v4, model.forward(ids)));

  auto rewrite = [&](const std::function<void(nlohmann::json&)>& change) {
    std::ifstream in(dir.path / "config.json");
    nlohmann::json j = nlohmann::json::parse(in);
    in.close();
    change(j);
    std::ofstream(dir.path / "config.json") << j.dump(2);
  };
  // transformers v5 moves theta and the scaling into rope_parameters.
  rewrite([](nlohmann::json& j) {
    nlohmann::json rope = j["rope_scaling"];
    rope["rope_theta"] = j["rope_theta"];
    j["rope_parameters"] = rope;
    j.erase("rope_theta");
    j.erase("rope_scaling");
  });
  CHECK(at::equal(transformer::load(dir.path, at::kCPU, at::kFloat).forward(ids), v4));

  // A non-default theta in the v5 layout is honoured, not replaced by 10000.
  rewrite([](nlohmann::json& j) {
    j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 10000.0}};
  });
  const at::Tensor theta_10k = transformer::load(dir.path, at::kCPU, at::kFloat).forward(ids);
  rewrite([](nlohmann::json& j) {
    j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 1000000.0}};
  });
  const at::Tensor theta_1m = transformer::load(dir.path, at::kCPU, at::kFloat).forward(ids);
  CHECK(max_diff(theta_1m, theta_10k) > 1e-4);
}

TEST_CASE("attention_bias puts a bias on o_proj for Llama and Qwen3, not for Qwen2") {
  auto parameter = [](const transformer& m, const std::string& name) {
    for (const auto& [n, t] : m.named_parameters())
      if (n == name)
        return t;
    return at::Tensor();
  };
  const std::string o_bias = "model.layers.1.self_attn.o_proj.bias";
  CHECK_FALSE(
    parameter(transformer::random(tiny_config(model_family::qwen2), 1, at::kCPU, at::kFloat),
              o_bias)
      .defined());
  for (auto family : {model_family::llama, model_family::qwen3}) {
    CAPTURE(to_string(family));
    model_config c = tiny_config(family);
    c.attention_bias = true;
    auto model = transformer::random(c, 4, at::kCPU, at::kFloat);
    CHECK(model.config().parameter_count() == [&] {
      int64_t n = 0;
      for (const auto& [name, t] : model.named_parameters())
        n += t.numel();
      return n;
    }());
    at::Tensor bias = parameter(model, o_bias);
    REQUIRE(bias.defined());
    CHECK(bias.sizes() == at::IntArrayRef({32}));
    at::Tensor ids = random_ids(1, 6, 97, 9);
    at::Tensor before = model.forward(ids);
    {
      at::NoGradGuard no_grad;
      bias.fill_(0.25);
    }
    CHECK(max_diff(model.forward(ids), before) > 1e-4);

    // The engine's packed path applies it too.
    sequence_kv kv = new_sequence_kv(model);
    at::Tensor hidden = forward_packed(model, ids[0], at::arange(6, at::kLong), {{&kv, 0, 6}});
    CHECK(max_diff(model.logits(hidden), model.forward(ids)[0]) <= 1e-5);

    temp_dir dir("o_bias");
    model.save(dir.path);
    auto loaded = transformer::load(dir.path, at::kCPU, at::kFloat);
    CHECK(at::equal(loaded.forward(ids), model.forward(ids)));
    CHECK(at::equal(parameter(loaded, o_bias), bias));
  }
}

TEST_CASE("bf16 attention takes its softmax in fp32, as transformers does") {
  // Many keys with close scores: a softmax rounded to bf16 before it is normalised loses what
  // the fp32 one keeps. The reference is transformers' eager attention:
  // softmax(q k^T / sqrt(D) + mask, dtype=float32).to(bf16) @ v.
  at::manual_seed(3);
  const int64_t S = 700;
  at::Tensor q = at::randn({1, 2, 3, 16}).to(at::kBFloat16);
  at::Tensor k = at::randn({1, 2, S, 16}).to(at::kBFloat16);
  at::Tensor v = at::randn({1, 2, S, 16}).to(at::kBFloat16);
  at::Tensor mask = at::zeros({1, 1, 3, S}, at::kBFloat16);
  mask.narrow(3, S - 5, 5).fill_(lowest_finite(at::kBFloat16));
  at::Tensor scores = at::matmul(q, k.transpose(-2, -1)) * (1.0 / 4.0) + mask;
  at::Tensor expected = at::matmul(at::softmax(scores.to(at::kFloat), -1).to(at::kBFloat16), v);
  // The check can tell: a softmax whose exponentials are summed in bf16 misses it by far.
  at::Tensor e = (scores - std::get<0>(scores.max(-1, /*keepdim=*/true))).exp();
  at::Tensor bf16_softmax = at::matmul(e / e.sum(-1, /*keepdim=*/true), v);
  CHECK(max_diff(bf16_softmax, expected) > 0.0);
  CHECK(max_diff(reference_attention(q, k, v, mask), expected) == 0.0);
  CHECK(max_diff(scaled_dot_product(q, k, v, mask), expected) <= 1e-2);
}
