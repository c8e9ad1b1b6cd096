// `pedagogy logits`: our model's logits for given token ids, written as a safetensors file, so
// that they can be compared with another implementation's (tools/device_check_hf.py compares
// them with Hugging Face transformers on the same weights).
#include "bench/device.hpp"
#include "launch/commands.hpp"
#include "models/tensor/transformer.hpp"
#include "models/weights/safetensors.hpp"
#include "runtime/errors.hpp"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <iostream>

namespace pedagogy::launch {

namespace {

using json = nlohmann::json;

struct logits_options {
  std::filesystem::path model;
  std::string device = "cpu";
  std::string dtype = "float32";
  std::filesystem::path out;
};

std::vector<int64_t> read_ids(const std::string& line, const models::model_config& config,
                              const std::string& where) {
  std::vector<int32_t> ids;
  try {
    ids = token_ids_of(json::parse(line), config.vocab_size);
  } catch (const json::exception& e) {
    throw input_error(where, "expected a JSON list of token ids, e.g. [9707, 1879]", e.what());
  } catch (const input_error& e) {
    throw input_error(where, e.problem(), e.hint());
  }
  if (ids.empty())
    throw input_error(where, "no token ids", "give at least one id per line");
  if (static_cast<int64_t>(ids.size()) > config.max_position_embeddings)
    throw input_error(where,
                      fmt::format("{} ids, more than the model's max_position_embeddings = {}",
                                  ids.size(), config.max_position_embeddings),
                      "split the sequence");
  return {ids.begin(), ids.end()};
}

// Each line is its own batch of one, so no padding or mask enters the comparison.
int logits(const logits_options& options) {
  const auto device = bench::parse_device(options.device, "flag --device");
  const auto dtype = options.dtype == "bfloat16" ? at::kBFloat16 : at::kFloat;
  const auto model = models::transformer::load(options.model, device, dtype);
  model.require_causal_lm(options.model);
  const int64_t vocab = model.config().vocab_size;
  at::NoGradGuard no_grad;
  models::named_tensors out;
  int64_t tokens = 0;
  double seconds = 0;
  std::string line;
  for (size_t number = 1; std::getline(std::cin, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos)
      continue;
    const auto ids = read_ids(line, model.config(), fmt::format("stdin line {}", number));
    const auto start = std::chrono::steady_clock::now();
    const auto input = at::tensor(ids, at::kLong).to(device).unsqueeze(0);        // [1, T]
    const auto values = model.forward(input).squeeze(0).to(at::kCPU, at::kFloat); // [T, V]
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    out.emplace_back(fmt::format("logits.{}", out.size()), values);
    tokens += static_cast<int64_t>(ids.size());
  }
  if (out.empty())
    throw input_error("stdin", "no token ids were given", "pipe one JSON list of ids per line");
  models::save_safetensors(
    options.out, out,
    {{"model", options.model.string()}, {"dtype", options.dtype}, {"device", device.str()}});
  std::cout << json{{"sequences", out.size()}, {"tokens", tokens},       {"vocab", vocab},
                    {"dtype", options.dtype},  {"device", device.str()}, {"seconds", seconds}}
                 .dump()
            << '\n';
  return static_cast<int>(exit_code::ok);
}

} // namespace

void add_logits_command(CLI::App& app, command_action& action) {
  auto o = std::make_shared<logits_options>();
  auto* cmd = app.add_subcommand(
    "logits", "Logits of a model for JSON token-id lists from stdin, into a safetensors file "
              "(tensor logits.i [T, V] float32 for line i)");
  cmd->add_option("--model,-m", o->model, "Model directory")->required();
  cmd->add_option("--device", o->device, "cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("--dtype", o->dtype, "Weights and compute: float32 or bfloat16")
    ->check(CLI::IsMember({"float32", "bfloat16"}))
    ->capture_default_str();
  cmd->add_option("--out,-o", o->out, "The .safetensors file to write")
    ->required()
    ->check(output_file());
  cmd->callback([o, &action] {
    action = [o] {
      return logits(*o);
    };
  });
}

} // namespace pedagogy::launch
