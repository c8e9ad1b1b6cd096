// The SFT job: run folder, data, step loop, validation, metrics and checkpoints (see
// sft_job.hpp).
#include "jobs/sft_job.hpp"

#include "inspect/progress.hpp"
#include "jobs/setup.hpp"
#include "models/sft/sft.hpp"
#include "models/tensor/device.hpp"
#include "run/checkpoints.hpp"
#include "run/run_folder.hpp"
#include "runtime/errors.hpp"
#include "runtime/files.hpp"
#include "runtime/logging.hpp"
#include "runtime/signals.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <iostream>
#include <sstream>

namespace pedagogy::actors {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using clock_type = std::chrono::steady_clock;

constexpr const char* metrics_name = "sft_metrics.jsonl";

// The newest checkpoint that is intact and was written by `pedagogy sft`, with what was wrong
// with newer ones.
checkpoint_entry newest_intact(const fs::path& dir, std::vector<std::string>& notes) {
  const auto found = list_checkpoints(dir);
  if (found.empty())
    throw input_error(dir.string(), "no checkpoint to resume from",
                      "run without --resume to start, or point checkpoint.dir at the run");
  std::string broken;
  for (auto it = found.rbegin(); it != found.rend(); ++it) {
    std::string problem = checkpoint_problem(it->dir);
    if (problem.empty()) {
      const auto state =
        json::parse(files::read_regular_file(it->dir / "trainer_state.json"), nullptr, false);
      if (state.value("kind", "") != "sft")
        throw input_error((it->dir / "trainer_state.json").string(),
                          "this checkpoint was not written by `pedagogy sft`",
                          "resume an SFT run's folder, or start one in another logging.run_dir");
      return *it;
    }
    notes.push_back(
      fmt::format("checkpoint {} is damaged ({}); trying an older one", it->dir.string(), problem));
    broken = problem;
  }
  throw input_error(dir.string(), "every checkpoint is damaged; the newest: " + broken,
                    "start over with --force, or restore a checkpoint from a copy");
}

// Train and validation examples as [sft] says.
struct sft_data {
  std::vector<models::sft_example> train, val;
};

sft_data load_data(const config::config& cfg, const models::tokenizer& tok,
                   const models::chat_format& format) {
  const auto& s = cfg.sft;
  if (s.train.empty())
    throw input_error("sft.train", "no training data given",
                      "set sft.train to a chat JSONL file (sft.train=path/to/chat.jsonl)");
  models::chat_jsonl_options o;
  o.messages_field = s.messages_field;
  o.assistant_only = s.loss_on == config::sft_loss::assistant;
  o.max_length = s.max_length;
  o.max_examples = s.max_examples;
  auto train = models::read_chat_jsonl(s.train, tok, format, o);
  sft_data out;
  if (!s.val.empty()) {
    o.max_examples = 0;
    out.train = std::move(train);
    out.val = models::read_chat_jsonl(s.val, tok, format, o);
  } else {
    auto split = models::split_validation(std::move(train), s.val_fraction,
                                          static_cast<uint64_t>(cfg.train.seed));
    out.train = std::move(split.train);
    out.val = std::move(split.val);
  }
  return out;
}

class sft_job {
public:
  sft_job(const config::config& cfg, const std::string& resolved_toml, const sft_run_options& opts)
    : cfg_(cfg), toml_(resolved_toml), opts_(opts) {}

  sft_result run() {
    prepare();
    loop();
    return result_;
  }

private:
  // Everything that can be wrong with the input fails here, before anything is deleted.
  void prepare() {
    lock_folders();
    std::vector<std::string> notes;
    const fs::path resume_dir = choose_start(notes);
    load_inputs();
    plan_steps(resume_dir);
    const at::Device device = load_learner(resume_dir);
    start_files(notes, resume_dir);
    log_summary(device);
  }

  // The run folder and, when it lies elsewhere, the checkpoint folder, locked.
  void lock_folders() {
    run_dir_ = cfg_.logging.run_dir;
    ckpt_dir_ =
      cfg_.checkpoint.dir.empty() ? run_dir_ / "checkpoints" : fs::path(cfg_.checkpoint.dir);
    metrics_path_ = run_dir_ / metrics_name;
    fs::create_directories(run_dir_);
    lock_ = std::make_unique<run_lock>(run_dir_);
    if (fs::weakly_canonical(fs::absolute(ckpt_dir_)) !=
        fs::weakly_canonical(fs::absolute(run_dir_))) {
      fs::create_directories(ckpt_dir_);
      ckpt_lock_ = std::make_unique<run_lock>(ckpt_dir_);
    }
  }

  // The checkpoint to continue from ("" for a fresh start).
  fs::path choose_start(std::vector<std::string>& notes) {
    fs::path resume_dir;
    if (opts_.resume) {
      const auto entry = newest_intact(ckpt_dir_, notes);
      resume_dir = entry.dir;
      result_.start_step = entry.step;
    } else if ((non_empty(metrics_path_) || non_empty(run_dir_ / "metrics.jsonl") ||
                !list_checkpoints(ckpt_dir_).empty()) &&
               !opts_.force) {
      throw input_error(run_dir_.string(), "the run folder holds an earlier run",
                        "pass --resume to continue it, --force to start over, or choose another "
                        "logging.run_dir");
    }

    return resume_dir;
  }

  // The model folder, its tokenizer and chat format, and the data.
  void load_inputs() {
    model_dir_ = cfg_.tutor.model;
    ensure_model(cfg_.tutor, "tutor", static_cast<uint64_t>(cfg_.train.seed));
    tok_ = std::make_unique<models::tokenizer>(
      models::tokenizer::from_file(model_dir_ / "tokenizer.json"));
    const auto format = models::chat_format::from_model_dir(model_dir_);
    data_ = load_data(cfg_, *tok_, format);
  }

  // The optimizer steps of the run, and the validation batches.
  void plan_steps(const fs::path& resume_dir) {
    const auto& s = cfg_.sft;
    plan_options_.pack = s.pack;
    plan_options_.max_length = s.max_length;
    plan_options_.micro_batch_size = s.micro_batch_size;
    plan_options_.gradient_accumulation = s.gradient_accumulation;
    plan_options_.seed = static_cast<uint64_t>(cfg_.train.seed);
    // max_steps may reach past the configured epochs: plan epochs until it is covered.
    for (int64_t epochs = s.epochs;; ++epochs) {
      steps_ = models::plan_steps(data_.train, plan_options_, epochs);
      if (s.max_steps == 0 || static_cast<int64_t>(steps_.size()) >= s.max_steps)
        break;
    }
    if (s.max_steps > 0)
      steps_.resize(static_cast<size_t>(s.max_steps));
    result_.total_steps = static_cast<int64_t>(steps_.size());
    if (result_.start_step > result_.total_steps)
      throw input_error(resume_dir.string(),
                        fmt::format("the checkpoint is at step {}, past this run's {} steps",
                                    result_.start_step, result_.total_steps),
                        "resume with the config the run started with (its config.toml)");
    auto val_options = plan_options_;
    val_options.shuffle = false;
    val_options.gradient_accumulation = 1;
    if (!data_.val.empty())
      for (auto& step : models::plan_steps(data_.val, val_options, 1))
        for (auto& m : step.micro_batches)
          val_batches_.push_back(std::move(m));
  }

  // The model (from the checkpoint when resuming) and its optimizer.
  at::Device load_learner(const fs::path& resume_dir) {
    const auto& s = cfg_.sft;
    const at::Device device = models::device_from_config(cfg_.tutor.device, "tutor.device");
    auto model =
      models::transformer::load(resume_dir.empty() ? model_dir_ : resume_dir, device, at::kFloat);
    models::sft_options o;
    o.adam = {cfg_.train.adam_beta1, cfg_.train.adam_beta2, cfg_.train.adam_eps,
              cfg_.train.weight_decay};
    o.learning_rate = s.learning_rate;
    o.lr_schedule = s.schedule == config::lr_schedule::cosine ? models::schedule::cosine
                                                              : models::schedule::constant;
    o.total_steps = result_.total_steps;
    o.warmup_steps =
      static_cast<int64_t>(std::ceil(s.warmup_ratio * static_cast<double>(result_.total_steps)));
    o.max_grad_norm = cfg_.train.max_grad_norm;
    o.packed = s.pack;
    learner_ = std::make_unique<models::sft_learner>(std::move(model), o);
    if (!resume_dir.empty()) {
      learner_->load_optimizer(resume_dir);
      if (learner_->optimizer().steps() != result_.start_step)
        throw input_error((resume_dir / "optimizer.safetensors").string(),
                          fmt::format("{} optimizer steps in the checkpoint of step {}",
                                      learner_->optimizer().steps(), result_.start_step),
                          "the checkpoint is inconsistent; resume from an older one");
    }

    return device;
  }

  // The input is good: only now is an earlier run deleted and the folder written.
  void start_files(std::vector<std::string>& notes, const fs::path& resume_dir) {
    if (!opts_.resume)
      refuse_models_in_checkpoints({run_dir_, ckpt_dir_, {model_dir_}});
    if (const auto removed = remove_temporaries(ckpt_dir_); removed > 0)
      notes.push_back(fmt::format("removed {} unfinished checkpoint folder(s) in {}", removed,
                                  ckpt_dir_.string()));
    if (opts_.force && !opts_.resume)
      clear_run_outputs({run_dir_, ckpt_dir_, {model_dir_}});
    if (cfg_.logging.log_file) {
      log::options lo;
      lo.levels = cfg_.logging.level;
      lo.file = (run_dir_ / "pedagogy.log").string();
      log::setup(lo);
    }
    logger_ = log::get("sft");
    for (const auto& note : notes)
      logger_->warn("{}", note);
    files::write_atomically(run_dir_ / "config.toml", toml_);
    if (opts_.resume) {
      keep_steps_before(metrics_path_, result_.start_step + 1);
      logger_->info("resuming from {} (step {})", resume_dir.string(), result_.start_step);
    }
    metrics_ = files::line_appender(metrics_path_);
    if (!opts_.resume)
      metrics_.truncate();
  }

  // What the run trains on, said once.
  void log_summary(const at::Device& device) {
    const auto& s = cfg_.sft;
    int64_t trained = 0, tokens = 0;
    for (const auto& e : data_.train) {
      trained += e.trained_tokens();
      tokens += static_cast<int64_t>(e.tokens.size());
    }
    logger_->info("sft: {} training examples ({} tokens, {} trained, loss on {}), {} validation; "
                  "{} optimizer steps of {} x {} {}; model {} on {}",
                  data_.train.size(), tokens, trained,
                  s.loss_on == config::sft_loss::assistant ? "assistant turns" : "all tokens",
                  data_.val.size(), result_.total_steps, s.gradient_accumulation,
                  s.micro_batch_size,
                  s.pack ? fmt::format("packed rows of {} tokens", s.max_length)
                         : std::string("examples (length buckets)"),
                  model_dir_.string(), device.str());
  }

  void validate(int64_t step) {
    if (val_batches_.empty())
      return;
    const auto start = clock_type::now();
    const double loss = learner_->evaluate(data_.val, val_batches_);
    const double seconds = std::chrono::duration<double>(clock_type::now() - start).count();
    if (result_.first_val_loss < 0)
      result_.first_val_loss = loss;
    result_.last_val_loss = loss;
    metrics_.append(json({{"step", step}, {"val_loss", loss}, {"val_s", seconds}}).dump());
    end_progress_line();
    logger_->info("step {}/{}: validation loss {:.4f} ({} examples, {:.1f} s)", step,
                  result_.total_steps, loss, data_.val.size(), seconds);
  }

  void save(int64_t step) {
    const auto tmp = begin_checkpoint(ckpt_dir_, step);
    learner_->save(tmp, model_dir_);
    const json state = {{"kind", "sft"},
                        {"step", step},
                        {"weights_version", step},
                        {"optimizer_steps", learner_->optimizer().steps()},
                        {"epoch", steps_[static_cast<size_t>(step - 1)].epoch},
                        {"seed", cfg_.train.seed},
                        {"config", toml_}};
    result_.checkpoint = finish_checkpoint(tmp, state.dump(2) + "\n");
    prune_checkpoints(ckpt_dir_, cfg_.checkpoint.keep_last, {model_dir_});
    saved_ = step;
    end_progress_line();
    logger_->info("checkpoint {}", result_.checkpoint.string());
  }

  // On a terminal the line updates in place; in the log, about every 10% of the run.
  void progress(int64_t step, const models::sft_step_report& r, double tokens_per_s) {
    progress_->update(
      step, fmt::format("sft step {}/{} | loss {:.4f} | lr {:.2e} | {:.0f} tokens/s", step,
                        result_.total_steps, r.loss, r.learning_rate, tokens_per_s));
  }

  void end_progress_line() {
    if (progress_)
      progress_->finish();
  }

  void loop() {
    const auto& s = cfg_.sft;
    start_ = clock_type::now();
    progress_ = std::make_unique<progress_line>(
      result_.total_steps, result_.start_step,
      [this](const std::string& line) { logger_->info("{}", line); });
    saved_ = result_.start_step;
    result_.steps_done = result_.start_step;
    if (result_.start_step == 0)
      validate(0);
    for (int64_t step = result_.start_step; step < result_.total_steps; ++step) {
      if (signals::stop_requested() != 0)
        break;
      const auto& plan = steps_[static_cast<size_t>(step)];
      const auto begin = clock_type::now();
      // A NaN/inf loss or gradient (models::sft_non_finite) stops the job before the weights
      // change; the checkpoints written so far are the run's last good state.
      const auto r = learner_->step(data_.train, plan.micro_batches);
      const double seconds = std::chrono::duration<double>(clock_type::now() - begin).count();
      const double tokens_per_s = seconds > 0 ? static_cast<double>(r.tokens) / seconds : 0.0;
      const int64_t done = step + 1;
      result_.steps_done = done;
      metrics_.append(json({{"step", done},
                            {"epoch", plan.epoch},
                            {"loss", r.loss},
                            {"grad_norm", r.grad_norm},
                            {"learning_rate", r.learning_rate},
                            {"trained_tokens", r.trained_tokens},
                            {"tokens", r.tokens},
                            {"tokens_per_s", tokens_per_s},
                            {"step_s", seconds}})
                        .dump());
      progress(done, r, tokens_per_s);
      const bool last = done == result_.total_steps;
      if ((s.val_every_steps > 0 && done % s.val_every_steps == 0) || last)
        validate(done);
      const int64_t every = cfg_.checkpoint.every_steps;
      if ((every > 0 && done % every == 0) || last)
        save(done);
      if (opts_.on_step)
        opts_.on_step({done, result_.total_steps, r.loss});
    }
    end_progress_line();
    metrics_.close();
    if (const int signal = signals::stop_requested(); signal != 0) {
      // The steps done are kept: the newest of them is checkpointed, and --resume goes on.
      if (result_.steps_done > saved_)
        save(result_.steps_done);
      logger_->warn("stopped by signal {} after {} of {} steps; {}", signal, result_.steps_done,
                    result_.total_steps,
                    result_.steps_done > 0 ? "continue with --resume" : "nothing to resume");
      result_.exit_code = signals::exit_code_for(signal);
      return;
    }
    const double elapsed = std::chrono::duration<double>(clock_type::now() - start_).count();
    logger_->info("sft done: {} steps in {}; validation loss {} -> {}; checkpoint {}",
                  result_.total_steps, duration_text(elapsed),
                  result_.first_val_loss < 0 ? "n/a"
                                             : fmt::format("{:.4f}", result_.first_val_loss),
                  result_.last_val_loss < 0 ? "n/a" : fmt::format("{:.4f}", result_.last_val_loss),
                  result_.checkpoint.string());
  }

  const config::config& cfg_;
  std::string toml_;
  sft_run_options opts_;
  fs::path run_dir_, ckpt_dir_, metrics_path_, model_dir_;
  std::unique_ptr<run_lock> lock_, ckpt_lock_;
  std::unique_ptr<models::tokenizer> tok_;
  sft_data data_;
  models::sft_plan_options plan_options_;
  std::vector<models::sft_step_plan> steps_;
  std::vector<models::sft_micro_batch> val_batches_;
  std::unique_ptr<models::sft_learner> learner_;
  files::line_appender metrics_;
  std::shared_ptr<spdlog::logger> logger_;
  sft_result result_;
  clock_type::time_point start_;
  std::unique_ptr<progress_line> progress_;
  int64_t saved_ = 0;
};

} // namespace

sft_result run_sft(const config::config& cfg, const std::string& resolved_toml,
                   const sft_run_options& options) {
  if (cfg.cluster.torch_threads > 0)
    at::set_num_threads(static_cast<int>(cfg.cluster.torch_threads));
  sft_job job(cfg, resolved_toml, options);
  return job.run();
}

} // namespace pedagogy::actors
