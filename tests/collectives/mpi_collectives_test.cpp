// The collectives of a multi-rank job, on 3 CPU ranks under mpirun (every rank runs every case,
// in the same order, as collectives need): the MPI thread's view of the world, the mpi weight
// channel (buckets smaller than a tensor, casting to a bf16 tutor, a tutor on the root's own
// rank), and data-parallel learners, whose step must equal one learner's on the whole batch.
#include "collectives/mpi_data_parallel.hpp"
#include "collectives/weight_channel.hpp"
#include "models/learner/learner.hpp"
#include "models/tensor/init_model.hpp"
#include "models/training/training_batch.hpp"
#include "rl/step_batch.hpp"
#include "runtime/mpi_service.hpp"
#include "tests/support/torch_doctest.hpp"

#include <cmath>
#include <memory>

using namespace pedagogy;
using namespace pedagogy::models;

namespace {

mpi::service& service() {
  static mpi::service s(/*collective_timeout_s=*/120);
  return s;
}

const model_config tiny = preset_config(model_family::qwen2, "tiny", 320);

// Element-wise max |a - b| over two parameter lists with the same names.
double max_difference(const named_tensors& a, const named_tensors& b) {
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    REQUIRE(a[i].first == b[i].first);
    worst = std::max(
      worst,
      (a[i].second.to(at::kDouble) - b[i].second.to(at::kDouble)).abs().max().item<double>());
  }
  return worst;
}

// Rank `root`'s parameters, as float32 copies, on every rank of the world.
named_tensors from_rank(const named_tensors& mine, int root) {
  named_tensors out;
  for (const auto& [name, t] : mine) {
    auto copy = t.detach().to(at::kFloat).contiguous().clone();
    service().broadcast(service().world_comm(), copy.data_ptr<float>(),
                        static_cast<size_t>(copy.numel()) * sizeof(float), root, "test weights");
    out.emplace_back(name, copy);
  }
  return out;
}

// Eight sequences of different lengths, trained on their second half, with the initial policy's
// own log-probs as behaviour and advantages of both signs.
std::vector<training_sequence> batch_for(const transformer& policy) {
  std::vector<training_sequence> batch;
  uint64_t state = 17;
  for (int i = 0; i < 8; ++i) {
    training_sequence s;
    const int length = 6 + 3 * i;
    for (int t = 0; t < length; ++t) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      s.tokens.push_back(static_cast<int32_t>((state >> 33) % 300));
      s.trained.push_back(t >= length / 2 ? 1 : 0);
    }
    s.advantage = (i % 2 == 0 ? 1.0 : -0.7) * (1 + 0.1 * i);
    at::NoGradGuard no_grad;
    s.behaviour_logprobs.assign(s.tokens.size(), 0.0f);
    const auto b = pad({s}, 0, 1, at::kCPU);
    const auto logp = sequence_logprobs(policy, b, 1.0);
    for (int t = 1; t < length; ++t)
      s.behaviour_logprobs[static_cast<size_t>(t)] = logp[0][t - 1].item<float>();
    batch.push_back(std::move(s));
  }
  return batch;
}

learner_options options() {
  learner_options o;
  o.learning_rate = 1e-4;
  o.micro_batch_size = 2;
  o.mu = 2;
  o.max_grad_norm = 0.5; // clipping uses the summed gradients' norm
  o.grpo.beta = 0.04;    // and the KL term the reference's log-probs
  return o;
}

} // namespace

TEST_CASE("the MPI thread knows every rank of the world") {
  auto& mpi = service();
  REQUIRE(mpi.self().world_size == 3);
  CHECK(mpi.world().size() == 3);
  for (int r = 0; r < 3; ++r)
    CHECK(mpi.world()[static_cast<size_t>(r)].rank == r);
  const auto names = mpi.all_gather(mpi.world_comm(), std::string(mpi.self().rank + 1, 'x'), "t");
  CHECK(names == std::vector<std::string>{"x", "xx", "xxx"});
}

TEST_CASE("the mpi weight channel sends a version in buckets to float32 and bfloat16 tutors") {
  auto& mpi = service();
  const int me = mpi.self().rank;
  const auto group = mpi.split({0, 1, 2}, "weights");
  REQUIRE(group.rank == me);
  // 1000-byte buckets: every tensor of the tiny model spans several, most buckets hold pieces
  // of two tensors.
  mpi_weight_channel channel(mpi, group, 1000, /*local_takers=*/me == 0 ? 1 : 0,
                             std::chrono::seconds(60));
  const auto source = transformer::random(tiny, 1, at::kCPU, at::kFloat);
  if (me == 0) {
    channel.offer(source.named_parameters(), 5);
    // A tutor on the root's own rank takes the snapshot, not the broadcast.
    auto local = transformer::random(tiny, 2, at::kCPU, at::kFloat);
    channel.take(local.named_parameters(), 5);
    CHECK(max_difference(local.named_parameters(), source.named_parameters()) == 0.0);
  } else {
    const auto dtype = me == 1 ? at::kFloat : at::kBFloat16;
    auto tutor = transformer::random(tiny, 2, at::kCPU, dtype);
    REQUIRE(max_difference(tutor.named_parameters(), source.named_parameters()) > 0.01);
    channel.take(tutor.named_parameters(), 5);
    named_tensors expected;
    for (const auto& [name, t] : source.named_parameters())
      expected.emplace_back(name, t.to(dtype));
    CHECK(max_difference(tutor.named_parameters(), expected) == 0.0);
  }
}

TEST_CASE("two data-parallel learners take the step one learner takes on the whole batch") {
  auto& mpi = service();
  const int me = mpi.self().rank;
  // Ranks 0 and 1 share the batch; rank 2 alone trains on all of it.
  const auto learners = mpi.split({0, 1}, "learners");
  auto policy = transformer::random(tiny, 3, at::kCPU, at::kFloat);
  const auto batch = batch_for(policy);
  learner l(std::move(policy), transformer::random(tiny, 3, at::kCPU, at::kFloat), options());
  learn_report report;
  if (me == 2) {
    report = l.learn(batch);
  } else {
    mpi_data_parallel peers(mpi, learners, /*bucket_bytes=*/4096);
    std::vector<training_sequence> share;
    for (size_t i : actors::learner_share(batch, 2, me))
      share.push_back(batch[i]);
    CHECK(share.size() == 4);
    report = l.learn(share, &peers);
  }
  CHECK(report.sequences == 8);
  CHECK(report.optimizer_steps == 2);
  CHECK(report.grad_norm > 0);

  // Float32 sums in another order: equal within 1e-6, and the two data-parallel ranks equal
  // bit for bit (both apply the same summed gradient).
  const auto mine = l.policy().named_parameters();
  const auto alone = from_rank(mine, 2);
  const auto first = from_rank(mine, 0);
  const double gap = max_difference(mine, alone);
  MESSAGE("rank ", me, ": max |w_dp - w_one| = ", gap);
  CHECK(gap <= 1e-6);
  if (me == 1)
    CHECK(max_difference(mine, first) == 0.0);
  std::vector<double> figures{report.loss, report.grad_norm, report.kl, report.trained_tokens};
  std::vector<double> reference = figures;
  mpi.broadcast(mpi.world_comm(), reference.data(), reference.size() * sizeof(double), 2,
                "test report");
  for (size_t i = 0; i < figures.size(); ++i)
    CHECK(figures[i] == doctest::Approx(reference[i]).epsilon(1e-5));
  // And the step moved the weights far more than the gap.
  const auto start = transformer::random(tiny, 3, at::kCPU, at::kFloat);
  CHECK(max_difference(mine, start.named_parameters()) > 1e-5);
}

TEST_CASE("ZeRO-1: two learners splitting the optimizer state take the unsharded step") {
  auto& mpi = service();
  const int me = mpi.self().rank;
  const auto learners = mpi.split({0, 1}, "sharded learners");
  for (const auto dtype : {at::kFloat, at::kBFloat16}) {
    const std::string dtype_name = c10::toString(dtype);
    CAPTURE(dtype_name);
    auto o = options();
    o.dtype = dtype;
    if (me != 2) {
      o.shard_rank = me;
      o.shard_count = 2;
    }
    auto policy = transformer::random(tiny, 3, at::kCPU, dtype);
    const auto batch = batch_for(transformer::random(tiny, 3, at::kCPU, at::kFloat));
    learner l(std::move(policy), transformer::random(tiny, 3, at::kCPU, dtype), o);
    learn_report report;
    if (me == 2) {
      report = l.learn(batch);
    } else {
      // Each learner keeps moments for about half of the elements.
      const int64_t all =
        2 * 4 * tiny.parameter_count() + (dtype == at::kFloat ? 0 : 4 * tiny.parameter_count());
      const double share =
        static_cast<double>(l.optimizer().state_bytes()) / static_cast<double>(all);
      MESSAGE("rank ", me, " keeps ", share, " of the optimizer state");
      CHECK(share > 0.3);
      CHECK(share < 0.7);
      mpi_data_parallel peers(mpi, learners, /*bucket_bytes=*/4096);
      std::vector<training_sequence> part;
      for (size_t i : actors::learner_share(batch, 2, me))
        part.push_back(batch[i]);
      report = l.learn(part, &peers);
    }
    CHECK(report.optimizer_steps == 2);
    const auto mine = l.policy().named_parameters();
    const auto alone = from_rank(mine, 2);
    const auto first = from_rank(mine, 0);
    if (me == 1)
      CHECK(max_difference(mine, first) == 0.0); // the broadcast left both learners identical
    const double gap = max_difference(mine, alone);
    MESSAGE("rank ", me, " (", dtype_name, "): max |w_zero1 - w_one| = ", gap);
    if (dtype == at::kFloat)
      CHECK(gap <= 1e-6);
    else
      CHECK(gap <= 2e-3); // bf16 compute over other micro-batches: a rounding step or so
    const auto start = transformer::random(tiny, 3, at::kCPU, dtype);
    CHECK(max_difference(mine, start.named_parameters()) > 1e-5);
  }
}

TEST_CASE("the token-balanced share deals every sequence to exactly one learner") {
  std::vector<training_sequence> batch(7);
  for (size_t i = 0; i < batch.size(); ++i)
    batch[i].tokens.resize(10 + 7 * ((i * 5) % 7));
  std::vector<int> owners(batch.size(), 0);
  std::vector<size_t> tokens(3, 0), counts(3, 0);
  for (int r = 0; r < 3; ++r)
    for (size_t i : actors::learner_share(batch, 3, r)) {
      ++owners[i];
      tokens[static_cast<size_t>(r)] += batch[i].tokens.size();
      ++counts[static_cast<size_t>(r)];
    }
  for (int o : owners)
    CHECK(o == 1);
  CHECK(*std::max_element(counts.begin(), counts.end()) -
          *std::min_element(counts.begin(), counts.end()) <=
        1);
  // Longest first to the lightest learner: within one longest sequence of each other.
  CHECK(*std::max_element(tokens.begin(), tokens.end()) -
          *std::min_element(tokens.begin(), tokens.end()) <=
        52);
}
