// The tokenizer's parts as read from tokenizer.json (see tokenizer.hpp), shared by the loader
// (tokenizer_load.cpp) and the encoder (tokenizer_encode.cpp).
#pragma once

#include "models/text/bpe.hpp"
#include "models/text/pretokenizer.hpp"
#include "models/text/tokenizer.hpp"
#include "runtime/errors.hpp"
#include "runtime/json_excerpt.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <array>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace pedagogy::models {

namespace tokenizer_detail {

enum class normal_form { nfc, nfd, nfkc, nfkd };

struct pre_step {
  std::unique_ptr<regex_splitter> splitter; // Split, or ByteLevel with use_regex
  bool add_prefix_space = false;            // ByteLevel only
};

// A post-processor template entry: the input sequence, or fixed special-token ids.
struct template_item {
  bool is_sequence = false;
  std::vector<int32_t> ids;
};

// `text` in each of `forms` in turn (NFC, NFD, NFKC, NFKD), as the normalizer runs them.
std::string normalize(std::string_view text, const std::vector<normal_form>& forms);

} // namespace tokenizer_detail

struct tokenizer::impl {
  using json = nlohmann::json;
  using normal_form = tokenizer_detail::normal_form;
  using pre_step = tokenizer_detail::pre_step;
  using template_item = tokenizer_detail::template_item;

  std::string where;
  std::unique_ptr<bpe_model> model;
  std::vector<std::string> tokens; // id -> text
  std::vector<uint8_t> special;    // id -> 1 when special
  std::vector<added_token> added;
  std::unordered_map<std::string, int32_t> added_ids;
  // Added tokens by first byte, longest first; raw = matched before normalization.
  std::array<std::vector<size_t>, 256> raw_by_byte;
  std::array<std::vector<size_t>, 256> normalized_by_byte;
  bool has_normalized_tokens = false;
  std::vector<normal_form> normal_forms;
  std::vector<pre_step> pre_steps;
  std::vector<template_item> template_single;
  bool byte_level_decoder = true;

  mutable std::mutex cache_mutex;
  mutable std::unordered_map<std::string, std::vector<int32_t>> word_cache;

  [[noreturn]] void unsupported(const std::string& component, const json& value) const {
    throw input_error(where, fmt::format("unsupported {}: {}", component, json_excerpt(value, 200)),
                      "only byte-level BPE tokenizers (GPT-2, Qwen2/2.5/3, Llama-3) are supported");
  }

  void load_normalizer(const json& node);
  void load_pre_tokenizer(const json& node);
  void load_post_processor(const json& node);
  void load_model(const json& node);
  void load_added_tokens(const json& node);

  // Splits `text` at added tokens from `buckets`; calls piece(text, token id or -1).
  template <class F>
  void split_added(std::string_view text, const std::array<std::vector<size_t>, 256>& buckets,
                   F&& piece) const;
  void encode_plain(std::string_view text, std::vector<int32_t>& out) const;
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;
};

} // namespace pedagogy::models
