// Writes random-init model directories (see init_model.hpp).
#include "models/tensor/init_model.hpp"

#include "models/tensor/transformer.hpp"
#include "models/text/bpe.hpp"
#include "models/text/tokenizer.hpp"
#include "models/weights/safetensors.hpp"
#include "runtime/errors.hpp"
#include "runtime/files.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <fstream>
#include <map>
#include <sstream>

namespace pedagogy::models {

namespace {

using json = nlohmann::json;

// The split patterns of the real tokenizers (Qwen2 splits digits one by one, Llama-3 by three).
constexpr const char* qwen_pattern =
  R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* llama_pattern =
  R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

struct special_token {
  const char* text;
  bool special;
};

std::vector<special_token> specials_of(model_family family) {
  switch (family) {
    case model_family::qwen2:
      return {{"<|endoftext|>", true}, {"<|im_start|>", true}, {"<|im_end|>", true}};
    case model_family::qwen3:
      return {{"<|endoftext|>", true},
              {"<|im_start|>", true},
              {"<|im_end|>", true},
              {"<think>", false},
              {"</think>", false}};
    case model_family::llama:
      return {{"<|begin_of_text|>", true}, {"<|end_of_text|>", true}, {"<|start_header_id|>", true},
              {"<|end_header_id|>", true}, {"<|eom_id|>", true},      {"<|eot_id|>", true}};
  }
  return {};
}

int64_t dimension(const std::map<std::string, int64_t>& dims, const std::string& key,
                  const std::string& preset) {
  auto it = dims.find(key);
  if (it == dims.end())
    throw input_error(fmt::format("preset '{}'", preset), fmt::format("'{}' is missing", key),
                      "write hidden=512,layers=8,heads=8,kv_heads=4,ffn=1536 (head_dim optional)");
  return it->second;
}

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw input_error(path.string(), "cannot read the file", "check the path");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_text(const std::filesystem::path& path, const std::string& text) {
  files::write_atomically(path, text);
}

// `out` without a trailing separator or a "." at its end, so that it has a name.
std::filesystem::path named(const std::filesystem::path& out) {
  std::filesystem::path path = std::filesystem::absolute(out).lexically_normal();
  return path.has_filename() ? path : path.parent_path();
}

// Moves the complete model in `partial` to `out`. A new (or empty) folder is one rename, so `out`
// holds the whole model or nothing. Over an existing model (--force) the files move one by one
// and config.json goes first and comes back last: in between, `out` is no model at all, and any
// other files a person keeps there stay.
void publish(const std::filesystem::path& partial, const std::filesystem::path& out) {
  namespace fs = std::filesystem;
  if (std::error_code ec; !fs::exists(out) || fs::is_empty(out)) {
    fs::rename(partial, out, ec);
    if (!ec)
      return; // else another process filled `out` meanwhile: replace its files as below
  }
  fs::remove(out / "config.json");
  for (const auto& entry : fs::directory_iterator(out)) // weights of another shard count
    if (is_weights_file(entry.path().filename().string()) &&
        !fs::exists(partial / entry.path().filename()))
      fs::remove(entry.path());
  for (const auto& entry : fs::directory_iterator(partial))
    if (entry.path().filename() != "config.json")
      fs::rename(entry.path(), out / entry.path().filename());
  fs::rename(partial / "config.json", out / "config.json");
  fs::remove(partial);
}

} // namespace

model_config preset_config(model_family family, const std::string& preset, int64_t vocab_size) {
  std::map<std::string, int64_t> dims;
  if (preset == "tiny") {
    dims = {{"hidden", 64}, {"layers", 2}, {"heads", 4}, {"kv_heads", 2}, {"ffn", 176}};
  } else if (preset == "base") {
    dims = {{"hidden", 512}, {"layers", 8}, {"heads", 8}, {"kv_heads", 4}, {"ffn", 1536}};
  } else if (preset == "small") {
    dims = {{"hidden", 768}, {"layers", 14}, {"heads", 12}, {"kv_heads", 4}, {"ffn", 2560}};
  } else {
    std::stringstream items(preset);
    std::string item;
    while (std::getline(items, item, ',')) {
      auto eq = item.find('=');
      int64_t value = 0;
      try {
        value = eq == std::string::npos ? 0 : std::stoll(item.substr(eq + 1));
      } catch (const std::exception&) {
      }
      if (value <= 0)
        throw input_error(
          fmt::format("preset '{}'", preset),
          fmt::format("'{}' is not name=positive integer", item),
          "use tiny, base, small, or hidden=512,layers=8,heads=8,kv_heads=4,ffn=1536");
      dims[item.substr(0, eq)] = value;
    }
  }
  model_config c;
  c.family = family;
  c.vocab_size = vocab_size;
  c.hidden_size = dimension(dims, "hidden", preset);
  c.num_hidden_layers = dimension(dims, "layers", preset);
  c.num_attention_heads = dimension(dims, "heads", preset);
  c.num_key_value_heads = dimension(dims, "kv_heads", preset);
  c.intermediate_size = dimension(dims, "ffn", preset);
  c.head_dim =
    dims.count("head_dim") != 0 ? dims["head_dim"] : c.hidden_size / c.num_attention_heads;
  for (const auto& [key, value] : dims)
    if (key != "hidden" && key != "layers" && key != "heads" && key != "kv_heads" && key != "ffn" &&
        key != "head_dim")
      throw input_error(fmt::format("preset '{}'", preset),
                        fmt::format("unknown dimension '{}'", key),
                        "known: hidden, layers, heads, kv_heads, ffn, head_dim");
  if (c.num_attention_heads % c.num_key_value_heads != 0 || c.head_dim % 2 != 0)
    throw input_error(fmt::format("preset '{}'", preset),
                      "heads must be a multiple of kv_heads and head_dim even",
                      "e.g. heads=8,kv_heads=4 with hidden=512 (head_dim 64)");
  c.max_position_embeddings = 32768;
  c.rms_norm_eps = 1e-6;
  switch (family) {
    case model_family::qwen2:
      c.rope_theta = 1000000.0;
      c.attention_bias = true;
      c.tie_word_embeddings = true;
      break;
    case model_family::qwen3:
      c.rope_theta = 1000000.0;
      c.tie_word_embeddings = true;
      break;
    case model_family::llama:
      c.rope_theta = 500000.0;
      c.rms_norm_eps = 1e-5;
      c.rope_scaling.llama3 = true;
      c.max_position_embeddings = 131072;
      break;
  }
  return c;
}

std::string byte_level_tokenizer_json(model_family family) {
  byte_alphabet alphabet;
  json vocab = json::object();
  for (int b = 0; b < 256; ++b)
    vocab[alphabet.spell(static_cast<uint8_t>(b))] = b;
  json added = json::array();
  int id = 256;
  for (const auto& t : specials_of(family))
    added.push_back({{"id", id++},
                     {"content", t.text},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", t.special}});
  const bool llama = family == model_family::llama;
  json post_processor = {{"type", "ByteLevel"},
                         {"add_prefix_space", false},
                         {"trim_offsets", false},
                         {"use_regex", false}};
  if (llama)
    post_processor = {
      {"type", "TemplateProcessing"},
      {"single", json::array({{{"SpecialToken", {{"id", "<|begin_of_text|>"}, {"type_id", 0}}}},
                              {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
      {"pair", json::array()},
      {"special_tokens",
       {{"<|begin_of_text|>",
         // <|begin_of_text|> is the first added token, right after the 256 bytes.
         {{"id", "<|begin_of_text|>"}, {"ids", {256}}, {"tokens", {"<|begin_of_text|>"}}}}}}};
  json tokenizer = {{"version", "1.0"},
                    {"truncation", nullptr},
                    {"padding", nullptr},
                    {"added_tokens", added},
                    {"normalizer", llama ? json(nullptr) : json{{"type", "NFC"}}},
                    {"pre_tokenizer",
                     {{"type", "Sequence"},
                      {"pretokenizers",
                       {{{"type", "Split"},
                         {"pattern", {{"Regex", llama ? llama_pattern : qwen_pattern}}},
                         {"behavior", "Isolated"},
                         {"invert", false}},
                        {{"type", "ByteLevel"},
                         {"add_prefix_space", false},
                         {"trim_offsets", false},
                         {"use_regex", false}}}}}},
                    {"post_processor", post_processor},
                    {"decoder",
                     {{"type", "ByteLevel"},
                      {"add_prefix_space", false},
                      {"trim_offsets", false},
                      {"use_regex", false}}},
                    {"model",
                     {{"type", "BPE"},
                      {"dropout", nullptr},
                      {"unk_token", nullptr},
                      {"continuing_subword_prefix", ""},
                      {"end_of_word_suffix", ""},
                      {"fuse_unk", false},
                      {"byte_fallback", false},
                      {"ignore_merges", llama},
                      {"vocab", vocab},
                      {"merges", json::array()}}}};
  return tokenizer.dump(2) + "\n";
}

std::string byte_level_tokenizer_config_json(model_family family) {
  const bool llama = family == model_family::llama;
  json config = {{"tokenizer_class", "PreTrainedTokenizerFast"},
                 {"model_max_length", 32768},
                 {"clean_up_tokenization_spaces", false},
                 {"bos_token", llama ? json("<|begin_of_text|>") : json(nullptr)},
                 {"eos_token", llama ? "<|eot_id|>" : "<|im_end|>"},
                 {"pad_token", llama ? "<|end_of_text|>" : "<|endoftext|>"}};
  return config.dump(2) + "\n";
}

model_config init_model(const init_options& options) {
  namespace fs = std::filesystem;
  if (options.out.empty())
    throw input_error("--out", "no output directory given", "pass --out DIR");
  std::error_code ec;
  if (fs::exists(options.out / "config.json", ec) && !options.force)
    throw input_error(options.out.string(), "already holds a model (config.json)",
                      "choose another --out, or pass --force to overwrite it");

  std::string tokenizer_json;
  std::string tokenizer_config;
  if (options.tokenizer_dir.empty()) {
    tokenizer_json = byte_level_tokenizer_json(options.family);
    tokenizer_config = byte_level_tokenizer_config_json(options.family);
  } else {
    tokenizer_json = read_text(options.tokenizer_dir / "tokenizer.json");
    if (fs::exists(options.tokenizer_dir / "tokenizer_config.json", ec))
      tokenizer_config = read_text(options.tokenizer_dir / "tokenizer_config.json");
  }
  // Loading it checks it and tells the vocabulary size (rounded up like released models).
  const auto tokenizer = tokenizer::from_json(tokenizer_json, "tokenizer.json");
  const int64_t vocab = (tokenizer.vocab_size() + 63) / 64 * 64;
  model_config config = preset_config(options.family, options.preset, vocab);
  if (options.num_labels < 0 || options.num_labels > 4096)
    throw input_error("init options", fmt::format("{} labels", options.num_labels),
                      "a classification head has 1..4096 labels (1 for a reward model)");
  config.num_labels = options.num_labels;
  const bool llama = options.family == model_family::llama;
  auto id = [&](const char* token) -> int64_t {
    auto found = tokenizer.token_to_id(token);
    return found ? *found : -1;
  };
  config.bos_token_id = llama ? id("<|begin_of_text|>") : id("<|endoftext|>");
  config.eos_token_ids.clear();
  for (const char* eos : llama
                           ? std::vector<const char*>{"<|end_of_text|>", "<|eom_id|>", "<|eot_id|>"}
                           : std::vector<const char*>{"<|im_end|>"})
    if (id(eos) >= 0)
      config.eos_token_ids.push_back(id(eos));

  auto model = transformer::random(config, options.seed, at::kCPU, options.dtype);
  // The whole folder is written beside `out` under a hidden name and moved into place only once
  // complete: a write that fails (a full disk) used to leave config.json alone in `out`, which
  // the next run then refused as an existing model instead of creating it again.
  const fs::path out = named(options.out);
  const fs::path partial =
    out.parent_path() / fmt::format(".{}.partial-{}", out.filename().string(), ::getpid());
  fs::remove_all(partial);
  try {
    model.save(partial);
    write_text(partial / "tokenizer.json", tokenizer_json);
    if (!tokenizer_config.empty())
      write_text(partial / "tokenizer_config.json", tokenizer_config);
    publish(partial, out);
  } catch (...) {
    fs::remove_all(partial, ec);
    throw;
  }
  return model.config();
}

} // namespace pedagogy::models
