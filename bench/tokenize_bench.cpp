// `pedagogy bench tokenize`: encode throughput on a varied corpus, one thread.
#include "bench/bench.hpp"
#include "models/text/tokenizer.hpp"

#include <fmt/format.h>

#include <chrono>

namespace pedagogy::bench {

figures tokenize(const tokenize_options& options) {
  auto path = options.tokenizer;
  if (std::filesystem::is_directory(path))
    path /= "tokenizer.json";
  auto tokenizer = models::tokenizer::from_file(path);
  auto corpus = options.corpus.empty()
                  ? varied_corpus(static_cast<size_t>(options.megabytes * 1e6), options.seed)
                  : file_corpus(options.corpus);
  size_t bytes = 0;
  for (const auto& doc : corpus)
    bytes += doc.size();

  // The first pass fills the word cache, as any long run does early on; later passes are the
  // steady state.
  auto pass = [&](size_t& tokens) {
    auto start = std::chrono::steady_clock::now();
    tokens = 0;
    for (const auto& doc : corpus)
      tokens += tokenizer.encode(doc).size();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  size_t tokens = 0;
  const double cold = pass(tokens);
  double warm = 1e300;
  for (int i = 0; i < 3; ++i)
    warm = std::min(warm, pass(tokens));

  figures f;
  f.title = fmt::format("bench tokenize: {} ({:.1f} MB, {} documents, 1 thread)", path.string(),
                        bytes / 1e6, corpus.size());
  f.add("mb_per_s", bytes / 1e6 / warm);
  f.add("tokens_per_s", tokens / warm);
  f.add("cold_mb_per_s", bytes / 1e6 / cold);
  f.add("bytes_per_token", static_cast<double>(bytes) / static_cast<double>(tokens));
  return f;
}

} // namespace pedagogy::bench
