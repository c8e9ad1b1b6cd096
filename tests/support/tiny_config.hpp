// The tiny decoder the model tests build from a fixed seed: 2 layers, 32 wide, grouped-query
// attention, each family with its own bias, RoPE and tying.
#pragma once

#include "models/weights/model_config.hpp"

namespace pedagogy::testing {

inline models::model_config tiny_config(models::model_family family) {
  using models::model_family;
  models::model_config c;
  c.family = family;
  c.vocab_size = 97;
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2; // grouped-query attention
  c.head_dim = 8;
  c.attention_bias = family == model_family::qwen2;
  c.rope_theta = family == model_family::llama ? 500000.0 : 1000000.0;
  if (family == model_family::llama) {
    c.rope_scaling.llama3 = true;
    c.rope_scaling.original_max_position_embeddings = 64; // small, so the scaling matters here
  }
  c.tie_word_embeddings = family != model_family::llama;
  return c;
}

} // namespace pedagogy::testing
