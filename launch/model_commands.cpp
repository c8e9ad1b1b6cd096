// `pedagogy tokenize` and `pedagogy chat-template`: the tokenizer and chat formats from the shell,
// so that anyone can compare them with Hugging Face.
#include "launch/commands.hpp"
#include "models/tensor/init_model.hpp"
#include "models/text/chat_format.hpp"
#include "models/text/tokenizer.hpp"
#include "runtime/errors.hpp"
#include "runtime/json_excerpt.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <iostream>
#include <iterator>

namespace pedagogy::launch {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

models::tokenizer load_tokenizer(const std::string& model) {
  fs::path path = model;
  if (fs::is_directory(path))
    path /= "tokenizer.json";
  if (!fs::exists(path))
    throw input_error(path.string(), "no tokenizer.json here",
                      "pass a Hugging Face model directory or a tokenizer.json file to --model");
  return models::tokenizer::from_file(path);
}

struct tokenize_options {
  std::string model;
  bool decode = false;
  bool json_lines = false;
  bool add_special_tokens = false;
  bool skip_special_tokens = false;
};

// One line in, one line out, flushed as it goes: a bad line stops the run but keeps what was
// already printed.
int tokenize(const tokenize_options& opts) {
  auto tokenizer = load_tokenizer(opts.model);
  std::string line;
  for (size_t number = 1; std::getline(std::cin, line); ++number) {
    const std::string where = fmt::format("stdin line {}", number);
    try {
      if (!opts.decode) {
        std::string text = opts.json_lines ? json::parse(line).get<std::string>() : line;
        std::cout << json(tokenizer.encode(text, opts.add_special_tokens)).dump() << std::endl;
        continue;
      }
      std::string text = tokenizer.decode(token_ids_of(json::parse(line), tokenizer.vocab_size()),
                                          opts.skip_special_tokens);
      std::cout << (opts.json_lines ? json(text).dump() : text) << std::endl;
    } catch (const json::exception& e) {
      throw input_error(where,
                        opts.decode ? "expected a JSON list of token ids, e.g. [9707, 1879]"
                                    : "expected a JSON string (with --json-lines)",
                        e.what());
    } catch (const input_error& e) {
      throw input_error(where, e.what(), e.hint());
    }
  }
  return static_cast<int>(exit_code::ok);
}

struct template_options {
  std::string model;
  bool generation_prompt = false;
  bool ids = false;
};

int chat_template(const template_options& opts) {
  auto format = models::chat_format::from_model_dir(opts.model);
  std::string input(std::istreambuf_iterator<char>(std::cin), {});
  json doc;
  try {
    doc = json::parse(input);
  } catch (const json::exception& e) {
    throw input_error("stdin", fmt::format("not valid JSON: {}", e.what()),
                      R"(give a list of messages: [{"role": "user", "content": "hi"}])");
  }
  const json& list = doc.is_object() && doc.contains("messages") ? doc["messages"] : doc;
  std::vector<models::chat_message> messages;
  if (!list.is_array())
    throw input_error("stdin", "expected a list of messages",
                      R"(e.g. [{"role": "user", "content": "hi"}] or {"messages": [...]})");
  for (size_t i = 0; i < list.size(); ++i) {
    const json& m = list[i];
    if (!m.is_object() || !m.contains("role") || !m.contains("content") || !m["role"].is_string() ||
        !m["content"].is_string())
      throw input_error(fmt::format("stdin message {}", i),
                        "needs a string \"role\" and \"content\"",
                        R"(e.g. {"role": "user", "content": "hi"})");
    messages.push_back({m["role"], m["content"]});
  }
  const std::string text = format.render(messages, opts.generation_prompt);
  if (opts.ids)
    std::cout << json(load_tokenizer(opts.model).encode(text)).dump() << '\n';
  else
    std::cout << text;
  return static_cast<int>(exit_code::ok);
}

struct init_cli {
  std::string family = "qwen2";
  std::string dtype = "float32";
  std::string head = "causal_lm";
  models::init_options options;
};

int init_model(init_cli& cli) {
  cli.options.family = models::family_from_name(cli.family, "flag --family");
  if (cli.dtype == "float32")
    cli.options.dtype = at::kFloat;
  else if (cli.dtype == "bfloat16")
    cli.options.dtype = at::kBFloat16;
  else
    throw input_error("flag --dtype", fmt::format("unknown dtype '{}'", cli.dtype),
                      "use float32 or bfloat16");
  if (cli.head == "classification")
    cli.options.num_labels = 1;
  else if (cli.head != "causal_lm")
    throw input_error("flag --head", fmt::format("unknown head '{}'", cli.head),
                      "use causal_lm (a generator) or classification (a one-label reward model)");
  auto config = models::init_model(cli.options);
  std::cout << fmt::format("wrote {} ({} {}, {:.2f}M parameters, vocab {}, seed {})\n",
                           cli.options.out.string(), cli.family, cli.options.preset,
                           static_cast<double>(config.parameter_count()) / 1e6, config.vocab_size,
                           cli.options.seed);
  return static_cast<int>(exit_code::ok);
}

} // namespace

std::vector<int32_t> token_ids_of(const json& list, int64_t vocab) {
  if (!list.is_array())
    throw input_error("", "expected a JSON list of token ids", "give token ids as [9707, 1879]");
  std::vector<int32_t> ids;
  for (const json& id : list) {
    const bool valid = id.is_number_unsigned() ? id.get<uint64_t>() < static_cast<uint64_t>(vocab)
                                               : id.is_number_integer() && id.get<int64_t>() >= 0 &&
                                                   id.get<int64_t>() < vocab;
    if (!valid)
      throw input_error(
        "", fmt::format("token id {} is not an integer in [0, {})", json_excerpt(id), vocab),
        "give ids this model's tokenizer gave (`pedagogy tokenize --model ...`)");
    ids.push_back(static_cast<int32_t>(id.get<int64_t>()));
  }
  return ids;
}

void add_model_commands(CLI::App& app, command_action& action) {
  auto i = std::make_shared<init_cli>();
  auto* init = app.add_subcommand("init-model", "Write a random-init Hugging Face model directory");
  init->add_option("--family", i->family, "qwen2, qwen3 or llama")->required();
  init
    ->add_option("--preset", i->options.preset,
                 "tiny, base (~25M), small (~100M), or hidden=H,layers=L,heads=N,kv_heads=K,ffn=F")
    ->capture_default_str();
  init->add_option("--out,-o", i->options.out, "Output directory")->required();
  init->add_option("--seed", i->options.seed, "Initialisation seed")->capture_default_str();
  init->add_option("--tokenizer", i->options.tokenizer_dir,
                   "Copy tokenizer.json/tokenizer_config.json from this model directory "
                   "(default: a byte-level tokenizer with the family's chat tokens)");
  init->add_option("--dtype", i->dtype, "float32 or bfloat16")->capture_default_str();
  init
    ->add_option("--head", i->head,
                 "causal_lm, or classification: a one-label score head (a reward model such as "
                 "eval.reward_model)")
    ->capture_default_str();
  init->add_flag("--force", i->options.force, "Overwrite a model already in --out");
  init->callback([i, &action] {
    action = [i] {
      return init_model(*i);
    };
  });

  auto t = std::make_shared<tokenize_options>();
  auto* tok = app.add_subcommand(
    "tokenize", "Encode text lines from stdin to JSON id lists (or decode with --decode)");
  tok->add_option("--model,-m", t->model, "Model directory or tokenizer.json")->required();
  tok->add_flag("--decode,-d", t->decode, "Read JSON id lists and print the decoded text");
  tok->add_flag("--json-lines", t->json_lines,
                "Texts are JSON strings, one per line (for text with newlines)");
  tok->add_flag("--add-special-tokens", t->add_special_tokens,
                "Add what the post-processor adds (Llama-3: <|begin_of_text|>)");
  tok->add_flag("--skip-special-tokens", t->skip_special_tokens,
                "Leave special tokens out when decoding");
  tok->callback([t, &action] {
    action = [t] {
      return tokenize(*t);
    };
  });

  auto c = std::make_shared<template_options>();
  auto* chat = app.add_subcommand(
    "chat-template", "Render JSON chat messages from stdin with the model's chat format");
  chat->add_option("--model,-m", c->model, "Model directory")->required();
  chat->add_flag("--generation-prompt,-g", c->generation_prompt,
                 "Open an assistant turn at the end");
  chat->add_flag("--ids", c->ids, "Print the token ids of the rendering instead of its text");
  chat->callback([c, &action] {
    action = [c] {
      return chat_template(*c);
    };
  });
}

} // namespace pedagogy::launch
