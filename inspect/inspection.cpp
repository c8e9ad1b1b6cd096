// The inspector's picture of a run and its renderings (see inspection.hpp).
#include "inspect/inspection.hpp"

#include "inspect/prometheus.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace pedagogy::actors {

namespace {

using nlohmann::json;

double seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// Every number of a metrics line, nested objects flattened with '_': "reject_rate_by_rule" ->
// {"does_not_leak_answer": 0.1} becomes reject_rate_by_rule_does_not_leak_answer.
void flatten(const json& j, const std::string& prefix,
             std::vector<std::pair<std::string, double>>& out) {
  for (const auto& [key, value] : j.items()) {
    const auto name = prefix.empty() ? key : prefix + "_" + key;
    if (value.is_object())
      flatten(value, name, out);
    else if (value.is_number())
      out.emplace_back(name, value.get<double>());
    else if (value.is_boolean())
      out.emplace_back(name, value.get<bool>() ? 1.0 : 0.0);
  }
}

// As dialogs.jsonl writes them: the tutor's view, and what the student saw of it.
json messages_json(const std::vector<classroom::dialog_message>& messages, bool student_view) {
  json out = json::array();
  for (const auto& m : messages)
    out.push_back({{"role", m.from_tutor ? "tutor" : "student"},
                   {"content", student_view ? classroom::visible_text(m.content) : m.content}});
  return out;
}

} // namespace

inspection::inspection(inspection_options options, clock::time_point start)
  : options_(std::move(options)), start_(start), started_at_(std::chrono::system_clock::now()) {}

size_t inspection::join(const watched_actor& who, clock::time_point now) {
  row r;
  r.who = who;
  r.joined = now;
  rows_.push_back(std::move(r));
  return rows_.size() - 1;
}

void inspection::count_tokens(row& r, int64_t tokens, clock::time_point now) {
  // The rate over the last 10 s of reports (they come about once a second).
  constexpr double rate_window_s = 10;
  auto& samples = r.rate_samples;
  samples.emplace_back(now, tokens);
  while (samples.size() > 2 && seconds(now - samples[1].first) >= rate_window_s)
    samples.pop_front();
  const auto& [first_time, first_tokens] = samples.front();
  const double dt = seconds(now - first_time);
  r.tokens_per_s =
    dt >= 0.5 ? static_cast<double>(std::max<int64_t>(0, tokens - first_tokens)) / dt : 0.0;
  r.tokens = tokens;
}

void inspection::on_generator(size_t index, const generator_status& s, clock::time_point now) {
  auto& r = rows_.at(index);
  ++reports_;
  count_tokens(r, s.generated, now);
  r.reported = true;
  r.last_report = now;
  r.state = s.running + s.waiting > 0 ? "generating" : "idle";
  r.queue = s.waiting;
  r.in_flight = s.running;
  r.sessions = s.sessions;
  r.kv_used = s.kv_held_tokens; // memory held: cannot exceed the capacity, unlike cached_tokens
  r.kv_capacity = s.kv_capacity;
  r.weights_version = s.weights_version;
  r.host_memory = s.host_memory;
  r.device_memory = s.device_memory;
  r.last_error = s.last_error;
  r.prefill_computed = s.prefill_computed;
  r.prefill_reused = s.prefill_reused;
  r.engine_steps = s.steps;
  r.evictions = s.evictions;
  r.busy_seconds = s.busy_seconds;
  if (!s.device.empty())
    r.who.device = s.device;
}

void inspection::on_learner(size_t index, const learner_status& s, clock::time_point now) {
  auto& r = rows_.at(index);
  ++reports_;
  count_tokens(r, s.trained_tokens, now);
  r.reported = true;
  r.last_report = now;
  r.state = s.state;
  r.in_flight = s.state == "idle" ? 0 : 1;
  r.weights_version = s.weights_version;
  r.host_memory = s.host_memory;
  r.device_memory = s.device_memory;
  r.last_error = s.last_error;
  r.busy_seconds = s.busy_seconds;
  r.learn_calls = s.learn_calls;
  r.micro_done = s.micro_done;
  r.micro_total = s.micro_total;
  if (!s.device.empty())
    r.who.device = s.device;
}

void inspection::on_lost(size_t index, const std::string& why) {
  auto& r = rows_.at(index);
  r.lost = true;
  r.lost_reason = why;
}

void inspection::on_trainer(const trainer_status& s, clock::time_point now) {
  ++reports_;
  trainer_ = s;
  trainer_seen_ = true;
  trainer_time_ = now;
  // Dialogs of steps long gone (abandoned by a stop) are not in flight any more.
  for (auto it = in_flight_.begin(); it != in_flight_.end();)
    it = it->second.first.step < s.step - 1 ? in_flight_.erase(it) : std::next(it);
}

void inspection::on_step(const std::string& metrics_line) {
  auto j = json::parse(metrics_line, nullptr, /*allow_exceptions=*/false);
  if (j.is_object())
    steps_.push_back(std::move(j));
}

void inspection::on_dialog(const dialog_progress& progress, clock::time_point now) {
  ++reports_;
  in_flight_[progress.id] = {progress, now};
}

void inspection::on_finished(const classroom::dialog_record& record) {
  ++reports_;
  in_flight_.erase(record.id);
  ++dialogs_finished_;
  ++finished_by_step_[record.step];
  if (record.status != "ok")
    ++dialogs_failed_;
  auto j = json::parse(classroom::to_json_line(record), nullptr, false);
  if (!j.is_object())
    return;
  finished_.push_back(std::move(j));
  while (finished_.size() > options_.finished_dialogs)
    finished_.pop_front();
}

bool inspection::responsive(const row& r, clock::time_point now) const {
  if (r.lost)
    return false;
  const auto since = r.reported ? now - r.last_report : now - r.joined;
  return seconds(since) <= options_.unresponsive_after_s;
}

std::string inspection::shown_state(const row& r, clock::time_point now) const {
  return responsive(r, now) ? r.state : "unresponsive";
}

double inspection::since_report(const row& r, clock::time_point now) const {
  return seconds(now - (r.reported ? r.last_report : r.joined));
}

json inspection::trainer_row(clock::time_point now) const {
  const bool trainer_live =
    trainer_seen_ && (trainer_.state == "finished" || trainer_.state == "failed" ||
                      seconds(now - trainer_time_) <= options_.unresponsive_after_s);
  return {{"role", "trainer"},
          {"index", 0},
          {"rank", 0},
          {"node", options_.node},
          {"device", "cpu"},
          {"state", !trainer_seen_ ? "starting"
                    : trainer_live ? trainer_.state
                                   : "unresponsive"},
          {"responsive", trainer_live},
          {"last_report_s", trainer_seen_ ? seconds(now - trainer_time_) : 0.0},
          {"queue", 0},
          {"in_flight", in_flight_.size()},
          {"tokens", 0},
          {"tokens_per_s", 0.0},
          {"weights_version", trainer_.weights_version},
          {"host_memory", trainer_.host_memory},
          {"device_memory", -1},
          {"last_error", trainer_.last_error}};
}

json inspection::inspector_row() const {
  return {{"role", "inspector"},
          {"index", 0},
          {"rank", 0},
          {"node", options_.node},
          {"device", "cpu"},
          {"state", "serving"},
          {"responsive", true},
          {"last_report_s", 0.0},
          {"queue", 0},
          {"in_flight", 0},
          {"tokens", 0},
          {"tokens_per_s", 0.0},
          {"weights_version", 0},
          {"host_memory", trainer_.host_memory},
          {"device_memory", -1},
          {"last_error", ""}};
}

json inspection::actor_row(const row& r, clock::time_point now) const {
  json a = {{"role", r.who.role},
            {"index", r.who.index},
            {"rank", r.who.rank},
            {"node", r.who.node},
            {"device", r.who.device},
            {"kind", r.who.kind},
            {"state", shown_state(r, now)},
            {"responsive", responsive(r, now)},
            {"last_report_s", since_report(r, now)},
            {"queue", r.queue},
            {"in_flight", r.in_flight},
            {"tokens", r.tokens},
            {"tokens_per_s", r.tokens_per_s},
            {"weights_version", r.weights_version},
            {"host_memory", r.host_memory},
            {"device_memory", r.device_memory},
            {"last_error", r.lost ? "connection lost: " + r.lost_reason : r.last_error}};
  if (r.who.kind == "generator") {
    a["sessions"] = r.sessions;
    a["kv_cache_tokens"] = r.kv_used;
    a["kv_cache_capacity"] = r.kv_capacity;
    a["prefill_computed"] = r.prefill_computed;
    a["prefill_reused"] = r.prefill_reused;
    a["engine_steps"] = r.engine_steps;
    a["evictions"] = r.evictions;
  } else {
    a["learn_calls"] = r.learn_calls;
    a["micro_batches_done"] = r.micro_done;
    a["micro_batches_total"] = r.micro_total;
  }
  a["busy_seconds"] = r.busy_seconds;
  return a;
}

json inspection::run_json(clock::time_point now) const {
  return {
    {"state", trainer_seen_ ? trainer_.state : "starting"},
    {"step", trainer_.step},
    {"total_steps", trainer_.total_steps},
    {"completed_steps", trainer_.completed},
    {"dialogs_done",
     [&] {
       const auto it = finished_by_step_.find(trainer_.step);
       return it == finished_by_step_.end() ? int64_t{0} : it->second;
     }()},
    {"dialogs_total", trainer_.dialogs_total},
    {"step_seconds", trainer_.step_seconds},
    {"weights_version", trainer_.weights_version},
    {"run_dir", options_.run_dir},
    {"uptime_s", seconds(now - start_)},
    {"started_unix_s", std::chrono::duration<double>(started_at_.time_since_epoch()).count()}};
}

json inspection::status(clock::time_point now) const {
  json actors = json::array();
  actors.push_back(trainer_row(now));
  actors.push_back(inspector_row());
  for (const auto& r : rows_)
    actors.push_back(actor_row(r, now));
  const json run = run_json(now);
  return {{"run", run},
          {"actors", actors},
          {"latest_step", steps_.empty() ? json(nullptr) : steps_.back()},
          {"reports", reports_},
          {"dialogs",
           {{"in_flight", in_flight_.size()},
            {"finished", dialogs_finished_},
            {"failed", dialogs_failed_}}}};
}

json inspection::dialogs() const {
  json in_flight = json::array();
  for (const auto& [id, entry] : in_flight_) {
    const auto& p = entry.first;
    in_flight.push_back({{"id", p.id},
                         {"step", p.step},
                         {"phase", p.phase},
                         {"tutor_turns", p.tutor_turns},
                         {"problem", p.problem},
                         {"student_name", p.student_name},
                         {"persona", p.persona},
                         {"ped_teacher", p.ped_teacher},
                         {"seconds", p.seconds},
                         {"messages", messages_json(p.messages, false)},
                         {"student_view", messages_json(p.messages, true)}});
  }
  json finished = json::array();
  for (auto it = finished_.rbegin(); it != finished_.rend(); ++it) // newest first
    finished.push_back(*it);
  return {{"in_flight", in_flight}, {"finished", finished}};
}

json inspection::steps() const {
  return json(steps_);
}

namespace {

// The families of every actor's samples.
void actor_families(prometheus::exposition& out) {
  using prometheus::metric_type;
  auto family = [&](const char* name, metric_type type, const char* help) {
    out.family(name, type, help);
  };
  family("pedagogy_actor_up", metric_type::gauge,
         "1 when the actor reported within the heartbeat window, 0 when unresponsive");
  family("pedagogy_actor_state", metric_type::gauge,
         "1 for the state the actor is in (idle, generating, learning, ..., unresponsive)");
  family("pedagogy_actor_last_report_age_seconds", metric_type::gauge,
         "seconds since the actor last reported");
  family("pedagogy_actor_queue_depth", metric_type::gauge, "requests waiting in the actor");
  family("pedagogy_actor_in_flight", metric_type::gauge, "requests the actor is working on");
  family("pedagogy_actor_tokens_total", metric_type::counter,
         "tokens generated (generators) or trained on (learners)");
  family("pedagogy_actor_tokens_per_second", metric_type::gauge,
         "tokens per second over the last report interval");
  family("pedagogy_actor_weights_version", metric_type::gauge, "the weights version it holds");
  family("pedagogy_actor_host_memory_bytes", metric_type::gauge,
         "resident memory of the actor's process");
  family("pedagogy_actor_device_memory_bytes", metric_type::gauge,
         "memory in use on the actor's GPU");
  family("pedagogy_actor_busy_seconds_total", metric_type::counter,
         "seconds the actor spent computing");
  family("pedagogy_generator_kv_cache_tokens", metric_type::gauge,
         "KV cache memory held, in tokens (blocks in use x block size)");
  family("pedagogy_generator_kv_cache_capacity_tokens", metric_type::gauge,
         "tokens the KV cache may hold");
  family("pedagogy_generator_sessions", metric_type::gauge, "open dialog sessions");
  family("pedagogy_generator_prefill_tokens_total", metric_type::counter,
         "prompt tokens, computed or reused from a session's cache");
  family("pedagogy_generator_engine_steps_total", metric_type::counter, "engine steps run");
  family("pedagogy_generator_evictions_total", metric_type::counter, "sessions evicted");
  family("pedagogy_learner_learn_calls_total", metric_type::counter,
         "rollout batches learned from");
}

// Every actor's samples, from its /status row.
void actor_samples(prometheus::exposition& out, const json& status) {
  for (const auto& a : status["actors"]) {
    const prometheus::labels who = {{"role", a["role"].get<std::string>()},
                                    {"index", std::to_string(a["index"].get<int64_t>())},
                                    {"rank", std::to_string(a["rank"].get<int64_t>())},
                                    {"node", a["node"].get<std::string>()},
                                    {"device", a["device"].get<std::string>()}};
    auto with = [&](const char* key, const std::string& value) {
      auto l = who;
      l.emplace_back(key, value);
      return l;
    };
    out.sample("pedagogy_actor_up", who, a["responsive"].get<bool>() ? 1 : 0);
    out.sample("pedagogy_actor_state", with("state", a["state"].get<std::string>()), 1);
    out.sample("pedagogy_actor_last_report_age_seconds", who, a["last_report_s"].get<double>());
    out.sample("pedagogy_actor_queue_depth", who, a["queue"].get<double>());
    out.sample("pedagogy_actor_in_flight", who, a["in_flight"].get<double>());
    if (a["role"] == "trainer" || a["role"] == "inspector") {
      out.sample("pedagogy_actor_host_memory_bytes", who, a["host_memory"].get<double>());
      continue;
    }
    out.sample("pedagogy_actor_tokens_total", who, a["tokens"].get<double>());
    out.sample("pedagogy_actor_tokens_per_second", who, a["tokens_per_s"].get<double>());
    out.sample("pedagogy_actor_weights_version", who, a["weights_version"].get<double>());
    out.sample("pedagogy_actor_host_memory_bytes", who, a["host_memory"].get<double>());
    if (a["device_memory"].get<int64_t>() >= 0)
      out.sample("pedagogy_actor_device_memory_bytes", who, a["device_memory"].get<double>());
    out.sample("pedagogy_actor_busy_seconds_total", who, a["busy_seconds"].get<double>());
    if (a["kind"] == "generator") {
      out.sample("pedagogy_generator_kv_cache_tokens", who, a["kv_cache_tokens"].get<double>());
      out.sample("pedagogy_generator_kv_cache_capacity_tokens", who,
                 a["kv_cache_capacity"].get<double>());
      out.sample("pedagogy_generator_sessions", who, a["sessions"].get<double>());
      out.sample("pedagogy_generator_prefill_tokens_total", with("source", "computed"),
                 a["prefill_computed"].get<double>());
      out.sample("pedagogy_generator_prefill_tokens_total", with("source", "reused"),
                 a["prefill_reused"].get<double>());
      out.sample("pedagogy_generator_engine_steps_total", who, a["engine_steps"].get<double>());
      out.sample("pedagogy_generator_evictions_total", who, a["evictions"].get<double>());
    } else {
      out.sample("pedagogy_learner_learn_calls_total", who, a["learn_calls"].get<double>());
    }
  }
}

// Every number of the last finished step's metrics line, as a gauge.
void last_step_gauges(prometheus::exposition& out, const json& line) {
  using prometheus::metric_type;
  {
    std::vector<std::pair<std::string, double>> values;
    flatten(line, "", values);
    for (const auto& [key, value] : values) {
      // Prometheus spells units out: rollout_s is rollout_seconds.
      auto base = key;
      if (base.size() > 2 && base.compare(base.size() - 2, 2, "_s") == 0)
        base += "econds";
      const auto name = prometheus::metric_name("pedagogy_train_last_" + base);
      out.family(name, metric_type::gauge,
                 fmt::format("the last finished step's {} (as in metrics.jsonl)", key));
      out.sample(name, {}, value);
    }
  }
}

} // namespace

std::string inspection::prometheus(clock::time_point now) const {
  prometheus::exposition out;
  actor_families(out);
  actor_samples(out, status(now));
  run_metrics(out);
  if (!steps_.empty())
    last_step_gauges(out, steps_.back());
  return out.text();
}

// The run's counters: steps, dialogs, reports.
void inspection::run_metrics(prometheus::exposition& out) const {
  using prometheus::metric_type;
  auto family = [&](const char* name, metric_type type, const char* help) {
    out.family(name, type, help);
  };
  family("pedagogy_train_steps_completed", metric_type::gauge, "training steps finished");
  family("pedagogy_train_steps_planned", metric_type::gauge, "training steps the run will take");
  family("pedagogy_train_step_seconds", metric_type::gauge,
         "seconds since the current step started");
  family("pedagogy_dialogs_finished_total", metric_type::counter, "dialogs finished");
  family("pedagogy_dialogs_failed_total", metric_type::counter,
         "dialogs finished with status other than ok");
  family("pedagogy_dialogs_in_flight", metric_type::gauge, "dialogs running now");
  family("pedagogy_inspector_reports_total", metric_type::counter,
         "status reports, dialog progress and records the inspector took in");
  out.sample("pedagogy_train_steps_completed", {}, static_cast<double>(trainer_.completed));
  out.sample("pedagogy_train_steps_planned", {}, static_cast<double>(trainer_.total_steps));
  out.sample("pedagogy_train_step_seconds", {}, trainer_.step_seconds);
  out.sample("pedagogy_dialogs_finished_total", {}, static_cast<double>(dialogs_finished_));
  out.sample("pedagogy_dialogs_failed_total", {}, static_cast<double>(dialogs_failed_));
  out.sample("pedagogy_dialogs_in_flight", {}, static_cast<double>(in_flight_.size()));
  out.sample("pedagogy_inspector_reports_total", {}, static_cast<double>(reports_));
}

} // namespace pedagogy::actors
