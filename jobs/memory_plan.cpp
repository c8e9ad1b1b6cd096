// The memory plan of a job (see memory_plan.hpp).
#include "jobs/memory_plan.hpp"

#include "models/tensor/init_model.hpp"
#include "runtime/errors.hpp"
#include "runtime/process_info.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <map>

namespace pedagogy::actors {

namespace {

constexpr double gib = 1024.0 * 1024.0 * 1024.0;
// The CUDA context, cuBLAS/NCCL workspaces and the caching allocator's fragmentation.
constexpr double device_reserve = 2.0 * gib;
// Tokens of system prompt, problem and chat template around a dialog's content tokens.
constexpr int64_t template_allowance = 1024;

const config::role_config& role_of(const config::config& cfg, const std::string& role) {
  if (role == "tutor")
    return cfg.tutor;
  if (role == "student")
    return cfg.student;
  return cfg.judge;
}

// Whether `device` with `dtype` auto resolves to a GPU for this plan.
bool on_gpu(const std::string& device, bool has_cuda) {
  return device.rfind("cuda", 0) == 0 || (device == "auto" && has_cuda);
}

double dtype_bytes(config::dtype_kind kind, bool gpu) {
  return kind == config::dtype_kind::float32 || (kind == config::dtype_kind::auto_ && !gpu) ? 4.0
                                                                                            : 2.0;
}

const char* dtype_name(double bytes) {
  return bytes == 2.0 ? "bf16" : "fp32";
}

struct shape_figures {
  double parameters = 0;
  double hidden = 0, ffn = 0, layers = 0, heads = 0, kv_width = 0, vocab = 0;
};

shape_figures figures_of(const models::model_config& c) {
  shape_figures f;
  f.parameters = static_cast<double>(c.parameter_count());
  f.hidden = static_cast<double>(c.hidden_size);
  f.ffn = static_cast<double>(c.intermediate_size);
  f.layers = static_cast<double>(c.num_hidden_layers);
  f.heads = static_cast<double>(c.num_attention_heads);
  f.kv_width = static_cast<double>(c.num_key_value_heads * c.head_dim);
  f.vocab = static_cast<double>(c.vocab_size);
  return f;
}

std::string gib_text(double bytes) {
  return fmt::format("{:.1f}", bytes / gib);
}

} // namespace

double rank_memory::total() const {
  double sum = 0;
  for (const auto& item : items)
    sum += item.bytes;
  return sum;
}

bool memory_plan::fits() const {
  return std::all_of(ranks.begin(), ranks.end(), [](const rank_memory& r) { return r.fits(); });
}

shape_source shapes_from_config(const config::config& cfg) {
  return [cfg](const std::string& role) -> std::optional<models::model_config> {
    const auto& r = role_of(cfg, role);
    if (r.model.empty())
      return std::nullopt;
    std::error_code ec;
    if (std::filesystem::exists(std::filesystem::path(r.model) / "config.json", ec))
      return models::model_config::load(r.model);
    if (const auto colon = r.init.find(':'); colon != std::string::npos) {
      const auto family = models::family_from_name(r.init.substr(0, colon), role + ".init");
      return models::preset_config(family, r.init.substr(colon + 1), 320);
    }
    return std::nullopt;
  };
}

namespace {

using shape_map = std::map<std::string, std::optional<shape_figures>>;

// Every rank's items, created as they are first named.
struct rank_items {
  std::map<int, rank_memory> ranks;
  rank_memory& rank(int r) {
    auto& m = ranks[r];
    m.rank = r;
    return m;
  }
  void add(int r, std::string what, double bytes) {
    rank(r).items.push_back({std::move(what), bytes});
  }
};

// A generator of `role` on each of the ranks `on`: weights, KV cache and one step's buffers.
void add_generators(rank_items& items, memory_plan& plan, const config::config& cfg,
                    const shape_map& shape, const std::string& role, const std::vector<int>& on,
                    bool has_cuda) {
  auto rank = [&](int r) -> rank_memory& {
    return items.rank(r);
  };
  auto add = [&](int r, std::string what, double bytes) {
    items.add(r, std::move(what), bytes);
  };
  const auto& s = shape.at(role);
  const auto& r = role_of(cfg, role);
  for (int at : on) {
    rank(at).roles.push_back(role);
    if (!s) {
      if (std::find(plan.notes.begin(), plan.notes.end(), role + ": no shape") ==
          plan.notes.end()) {
        plan.notes.push_back(role + ": no shape");
        plan.unknown_roles.push_back(role);
      }
      continue;
    }
    const double b = dtype_bytes(r.dtype, on_gpu(r.device, has_cuda));
    const auto kv_tokens = static_cast<double>(r.kv_budget());
    add(at, fmt::format("{} weights ({})", role, dtype_name(b)), s->parameters * b);
    add(at, fmt::format("{} KV cache ({:.0f} tokens)", role, kv_tokens),
        kv_tokens * 2 * s->layers * s->kv_width * b);
    // One step: the float32 logits of every sequence decoded together, and a prefill chunk's
    // hidden states.
    add(at, role + " step",
        static_cast<double>(r.max_batch_sequences) * s->vocab * 4 + 512 * s->hidden * b * 16);
  }
}

// The learners: weights, fp32 gradients, AdamW state (sharded with ZeRO-1), the reference,
// activations, the mask and the log-probs' logits. Returns the training sequences' length.
double add_learners(rank_items& items, const config::config& cfg, const placement& where,
                    const shape_map& shape, bool has_cuda) {
  auto rank = [&](int r) -> rank_memory& {
    return items.rank(r);
  };
  auto add = [&](int r, std::string what, double bytes) {
    items.add(r, std::move(what), bytes);
  };
  const auto& t = cfg.train;
  const bool learner_gpu = on_gpu(cfg.tutor.device, has_cuda);
  const double b = dtype_bytes(t.dtype, learner_gpu);
  const double shards =
    t.shard_optimizer ? static_cast<double>(std::max<size_t>(1, where.learners.size())) : 1.0;
  const auto& c = cfg.classroom;
  const double tokens = static_cast<double>(
    std::min(cfg.tutor.max_context,
             c.max_tokens_in_conversation + c.max_tokens_per_turn + template_allowance));
  const double batch = static_cast<double>(t.micro_batch_size);
  const bool checkpointing =
    t.activation_checkpointing == config::layer_checkpointing::on ||
    (t.activation_checkpointing == config::layer_checkpointing::auto_ && learner_gpu);
  for (size_t i = 0; i < where.learners.size(); ++i) {
    const int at = where.learners[i];
    rank(at).roles.push_back(i == 0 ? "learner (root)" : "learner");
    const auto& s = shape.at("tutor");
    if (!s)
      continue;
    const double p = s->parameters;
    add(at, fmt::format("learner weights ({})", dtype_name(b)), p * b);
    // Float32 in either dtype: the bf16 learner accumulates its micro-batches' gradients in
    // float32 buffers, as Megatron's main_grad (models/training/main_grads.hpp).
    add(at, "learner gradients (fp32)", p * 4);
    add(at,
        fmt::format("AdamW moments{} (fp32{})", b == 2 ? " + master weights" : "",
                    shards > 1 ? fmt::format(", 1/{:.0f} with ZeRO-1", shards) : ""),
        p * (b == 2 ? 12.0 : 8.0) / shards);
    if (t.beta != 0.0)
      add(at, fmt::format("reference weights ({})", dtype_name(b)), p * b);
    // What one layer keeps for its backward: its input, the norms' outputs, q, k, v, attention
    // output, the MLP's gate, up, activation and down input.
    const double layer = batch * tokens * b * (6 * s->hidden + 2 * s->kv_width + 4 * s->ffn);
    const double activations =
      checkpointing ? s->layers * batch * tokens * s->hidden * b + layer : s->layers * layer;
    add(at,
        fmt::format("activations ({:.0f} x {:.0f} tokens{})", batch, tokens,
                    checkpointing ? ", layers checkpointed" : ""),
        activations);
    // Fused attention keeps no scores; the additive causal mask is [B, 1, T, T].
    add(at, "attention mask", batch * tokens * tokens * b);
    const double chunk =
      t.logprob_chunk_tokens > 0 ? static_cast<double>(t.logprob_chunk_tokens) : batch * tokens;
    add(at, fmt::format("log-probs ({:.0f}-token chunks)", chunk),
        chunk * s->vocab * 4 * 3 + (t.logprob_chunk_tokens > 0 ? s->vocab * s->hidden * 4 : 0));
  }
  return tokens;
}

} // namespace

memory_plan plan_memory(const config::config& cfg, const placement& where,
                        const shape_source& shapes, const std::function<double(int)>& capacity,
                        bool has_cuda) {
  memory_plan plan;
  shape_map shape;
  for (const char* role : {"tutor", "student", "judge"}) {
    std::optional<models::model_config> c;
    try {
      c = shapes(role);
    } catch (const std::exception& e) {
      plan.notes.push_back(fmt::format("{}: shape unknown ({})", role, e.what()));
    }
    if (c)
      shape[role] = figures_of(*c);
    else
      shape[role] = std::nullopt;
  }

  // ---- generators
  rank_items items;
  add_generators(items, plan, cfg, shape, "tutor", where.tutors, has_cuda);
  add_generators(items, plan, cfg, shape, "student", where.students, has_cuda);
  add_generators(items, plan, cfg, shape, "judge", where.judges, has_cuda);

  // ---- learners
  const double tokens = add_learners(items, cfg, where, shape, has_cuda);
  items.rank(0).roles.insert(items.rank(0).roles.begin(), "trainer");

  for (auto& [r, m] : items.ranks) {
    m.capacity = capacity(r);
    if (m.capacity > 0)
      m.items.push_back({"CUDA context and allocator reserve", device_reserve});
    plan.ranks.push_back(std::move(m));
  }
  plan.notes.push_back(
    fmt::format("training sequences of up to {:.0f} tokens (classroom.max_tokens_in_conversation + "
                "max_tokens_per_turn + {} for prompt and template, at most tutor.max_context)",
                tokens, template_allowance));
  return plan;
}

std::string memory_plan::table() const {
  std::string out = fmt::format("{:<5} {:<32} {:>9} {:>9}  {}\n", "rank", "roles", "GiB", "of GiB",
                                "largest parts");
  for (const auto& r : ranks) {
    std::string roles;
    for (const auto& role : r.roles)
      roles += (roles.empty() ? "" : ", ") + role;
    auto items = r.items;
    std::sort(items.begin(), items.end(),
              [](const memory_item& a, const memory_item& b) { return a.bytes > b.bytes; });
    std::string parts;
    for (size_t i = 0; i < items.size() && i < 4; ++i)
      parts += fmt::format("{}{} {}", i == 0 ? "" : "; ", items[i].what, gib_text(items[i].bytes));
    out += fmt::format("{:<5} {:<32} {:>9} {:>9}  {}{}\n", r.rank, roles, gib_text(r.total()),
                       r.capacity > 0 ? gib_text(r.capacity) : "-", parts,
                       r.fits() ? "" : "  DOES NOT FIT");
  }
  for (const auto& note : notes)
    out += "note: " + note + "\n";
  return out;
}

double device_capacity_bytes(const config::config& cfg, const std::string& device) {
  if (cfg.cluster.device_memory_gib > 0)
    return cfg.cluster.device_memory_gib * gib;
  const int64_t total = process_info::device_total_bytes(device);
  return total > 0 ? static_cast<double>(total) : 0.0;
}

void check_memory_plan(const memory_plan& plan, int rank) {
  for (const auto& r : plan.ranks) {
    if ((rank >= 0 && r.rank != rank) || r.fits())
      continue;
    std::string parts;
    for (const auto& item : r.items)
      parts += fmt::format("\n  {:<56} {:>6} GiB", item.what, gib_text(item.bytes));
    throw input_error(
      "cluster.device_memory_gib",
      fmt::format("rank {} needs {} GiB, its device has {} GiB:{}", r.rank, gib_text(r.total()),
                  gib_text(r.capacity), parts),
      "lower <role>.kv_cache_tokens or train.micro_batch_size, use train.dtype = \"bfloat16\" "
      "with train.shard_optimizer = true over more cluster.learner_ranks, or "
      "train.activation_checkpointing = \"on\"");
  }
}

} // namespace pedagogy::actors
