// Conversation actors and the two rollout schedules (see rollout.hpp).
#include "actors/rollout.hpp"

#include "runtime/errors.hpp"
#include "runtime/logging.hpp"
#include "runtime/seeds.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <exception>
#include <map>
#include <mutex>
#include <optional>

namespace pedagogy::actors {

namespace {

const generator_actor& generator_for(const role_generators& g, role_kind role) {
  switch (role) {
    case role_kind::tutor:
      return g.tutor;
    case role_kind::student:
      return g.student;
    case role_kind::judge:
      break;
  }
  return g.judge;
}

// A refused request (bad input: the prompt does not fit, a malformed session) fails the same
// way again; anything else (an engine or network failure) may pass on a retry.
bool retryable(const caf::error& e) {
  return !(e.category() == caf::atom("system") &&
           e.code() == static_cast<uint8_t>(caf::sec::invalid_argument));
}

// What a generator said when it failed a call: the text it put into the error (which names its
// role and, where one is known, a hint), not CAF's "system_error(runtime_error, (...))" wrapping.
std::string failure_text(caf::actor_system& system, const caf::error& e) {
  const auto& context = e.context();
  if (context.match_elements<std::string>())
    return context.get_as<std::string>(0);
  return system.render(e);
}

std::optional<dialog_call> next_call(dialog_runner& runner) {
  try {
    return runner.next();
  } catch (const std::exception& e) {
    // A template or a generator reply the classroom cannot use: this dialog fails, not the run.
    runner.abort(e.what());
    return runner.next();
  }
}

struct conversation_state {
  std::unique_ptr<dialog_runner> runner;
  std::chrono::milliseconds timeout{0};
  static inline const char* name = "conversation";
};

using conversation_pointer = caf::stateful_actor<conversation_state>*;

caf::duration timeout_of(conversation_pointer self) {
  return caf::duration{self->state.timeout};
}

void advance(conversation_pointer self, const role_generators& generators, int64_t index,
             const rollout_handle& reply_to) {
  auto& runner = *self->state.runner;
  auto call = next_call(runner);
  if (generators.inspector && call)
    self->send(generators.inspector, runner.progress());
  if (!call) {
    self->send(reply_to, index, runner.finish());
    self->quit();
    return;
  }
  const auto& generator = generator_for(generators, call->role);
  auto on_error = [=](caf::error& e) {
    self->state.runner->on_failure(failure_text(self->system(), e), retryable(e));
    advance(self, generators, index, reply_to);
  };
  if (!generator) {
    auto missing = caf::make_error(caf::sec::invalid_argument, "no generator for this role");
    on_error(missing);
    return;
  }
  if (call->stage == call_stage::close) {
    self->request(generator, timeout_of(self), close_atom::value, call->request.session)
      .then(
        [=](token_history& history) {
          self->state.runner->on_closed(std::move(history));
          advance(self, generators, index, reply_to);
        },
        on_error);
    return;
  }
  self->request(generator, timeout_of(self), generate_atom::value, call->request)
    .then(
      [=](generate_reply& reply) {
        self->state.runner->on_reply(std::move(reply));
        advance(self, generators, index, reply_to);
      },
      on_error);
}

caf::behavior conversation(conversation_pointer self, std::shared_ptr<const classroom_setup> setup,
                           role_generators generators, dialog_job job, int64_t index,
                           rollout_handle reply_to) {
  self->state.timeout = setup->request_timeout;
  self->state.runner = std::make_unique<dialog_runner>(std::move(setup), std::move(job));
  advance(self, generators, index, reply_to);
  return {};
}

// A record for a dialog that did not report: its actor died ("failed"), or the rollout was
// stopped before it finished ("abandoned").
dialog_result lost(const dialog_job& job, const std::string& reason,
                   const std::string& status = "failed") {
  dialog_result r;
  r.record.id = dialog_id(job);
  r.record.status = status;
  r.record.error = reason;
  r.record.step = job.step + 1;
  r.record.problem_index = job.problem_index;
  r.record.sample = job.sample + 1;
  r.record.problem = job.problem.text;
  r.record.answer = job.problem.answer;
  return r;
}

} // namespace

std::vector<dialog_job> make_jobs(int64_t step, const std::vector<classroom::problem>& problems,
                                  const std::vector<int64_t>& problem_indices, int64_t samples,
                                  uint64_t seed) {
  std::vector<dialog_job> jobs;
  for (int64_t index : problem_indices) {
    PEDAGOGY_CHECK(index >= 0 && index < static_cast<int64_t>(problems.size()),
                   "problem index {} out of range", index);
    for (int64_t sample = 0; sample < samples; ++sample) {
      dialog_job job;
      job.step = step;
      job.problem_index = index;
      job.sample = sample;
      job.problem = problems[static_cast<size_t>(index)];
      job.seed = derive_seed(
        derive_seed(derive_seed(seed, static_cast<uint64_t>(step)), static_cast<uint64_t>(index)),
        static_cast<uint64_t>(sample));
      jobs.push_back(std::move(job));
    }
  }
  return jobs;
}

caf::actor spawn_conversation(caf::actor_system& system,
                              std::shared_ptr<const classroom_setup> setup,
                              const role_generators& generators, dialog_job job, int64_t index,
                              rollout_handle reply_to) {
  return system.spawn(conversation, std::move(setup), generators, std::move(job), index,
                      std::move(reply_to));
}

namespace {

struct schedule_state {
  std::shared_ptr<const classroom_setup> setup;
  role_generators generators;
  std::vector<dialog_job> jobs;
  result_sink sink;
  rollout_options options;
  caf::actor reply_to;
  int64_t tag = 0;
  std::vector<std::optional<dialog_result>> results;
  std::map<caf::actor_addr, int64_t> index_of;
  std::map<int64_t, caf::actor> running;
  size_t next = 0;
  size_t done = 0;
  bool stopped = false;
  bool reported = false;
  static inline const char* name = "rollout";
};

using schedule_pointer = rollout_handle::stateful_pointer<schedule_state>;

void finish_if_done(schedule_pointer self) {
  auto& s = self->state;
  if (s.done < s.jobs.size() || s.reported)
    return;
  s.reported = true;
  std::vector<dialog_result> out;
  for (auto& r : s.results)
    out.push_back(std::move(*r));
  // The spawner is untyped (the trainer, or run_rollout's waiting thread): sent without a sender.
  caf::anon_send(s.reply_to, rollout_done_atom::value, s.tag, std::move(out));
  self->quit();
}

void deliver(schedule_pointer self, int64_t index, dialog_result result) {
  auto& s = self->state;
  s.running.erase(index);
  auto& slot = s.results[static_cast<size_t>(index)];
  if (slot)
    return;
  if (s.sink && result.record.status != abandoned_status)
    s.sink(result);
  slot = std::move(result);
  ++s.done;
}

bool stop_asked(schedule_pointer self) {
  return self->state.options.stop && self->state.options.stop();
}

void start_more(schedule_pointer self) {
  auto& s = self->state;
  const size_t cap = s.options.max_in_flight > 0 ? static_cast<size_t>(s.options.max_in_flight)
                                                 : std::max<size_t>(s.jobs.size(), 1);
  while (!s.stopped && s.next < s.jobs.size() && s.running.size() < cap && !stop_asked(self)) {
    const auto index = static_cast<int64_t>(s.next);
    auto actor = spawn_conversation(self->system(), s.setup, s.generators, s.jobs[s.next], index,
                                    caf::actor_cast<rollout_handle>(self));
    self->monitor(actor);
    s.index_of.emplace(actor.address(), index);
    s.running.emplace(index, std::move(actor));
    ++s.next;
  }
}

void stop_now(schedule_pointer self) {
  auto& s = self->state;
  if (s.stopped)
    return;
  s.stopped = true;
  for (; s.next < s.jobs.size(); ++s.next)
    deliver(
      self, static_cast<int64_t>(s.next),
      lost(s.jobs[s.next], "the rollout was stopped before this dialog started", abandoned_status));
  for (const auto& [index, actor] : s.running)
    self->send_exit(actor, caf::exit_reason::user_shutdown);
}

rollout_handle::behavior_type schedule(schedule_pointer self,
                                       std::shared_ptr<const classroom_setup> setup,
                                       role_generators generators, std::vector<dialog_job> jobs,
                                       result_sink sink, rollout_options options,
                                       caf::actor reply_to, int64_t tag) {
  auto& s = self->state;
  s.setup = std::move(setup);
  s.generators = std::move(generators);
  s.jobs = std::move(jobs);
  s.sink = std::move(sink);
  s.options = std::move(options);
  s.reply_to = std::move(reply_to);
  s.tag = tag;
  s.results.resize(s.jobs.size());
  // An exit message abandons the dialogs that have not finished; the results still go out.
  self->set_exit_handler([=](caf::exit_msg&) {
    stop_now(self);
    finish_if_done(self);
  });
  self->set_down_handler([=](caf::down_msg& down) {
    // A conversation that stops without its record (it reports before it quits, so a normal
    // exit finds the slot filled) is recorded as failed, or abandoned when we stopped it.
    auto& st = self->state;
    auto it = st.index_of.find(down.source);
    if (it == st.index_of.end() || st.results[static_cast<size_t>(it->second)])
      return;
    const auto index = it->second;
    const auto& job = st.jobs[static_cast<size_t>(index)];
    deliver(self, index,
            st.stopped
              ? lost(job, "the rollout was stopped while this dialog ran", abandoned_status)
              : lost(job, "the conversation actor stopped: " + self->system().render(down.reason)));
    start_more(self);
    finish_if_done(self);
  });
  start_more(self);
  finish_if_done(self); // no jobs at all
  if (!self->state.reported)
    self->delayed_send(self, std::chrono::milliseconds(200), tick_atom::value);
  return {
    [=](int64_t index, dialog_result& result) {
      deliver(self, index, std::move(result));
      start_more(self);
      finish_if_done(self);
    },
    // Looks at options.stop even while no dialog finishes.
    [=](tick_atom) {
      if (!self->state.stopped && stop_asked(self))
        stop_now(self);
      finish_if_done(self);
      if (!self->state.reported)
        self->delayed_send(self, std::chrono::milliseconds(200), tick_atom::value);
    },
  };
}

} // namespace

rollout_handle spawn_rollout(caf::actor_system& system,
                             std::shared_ptr<const classroom_setup> setup,
                             const role_generators& generators, std::vector<dialog_job> jobs,
                             result_sink sink, rollout_options options, caf::actor reply_to,
                             int64_t tag) {
  // Detached: the sink writes each finished dialog to disk.
  return system.spawn<caf::detached>(schedule, std::move(setup), generators, std::move(jobs),
                                     std::move(sink), std::move(options), std::move(reply_to), tag);
}

std::vector<dialog_result> run_rollout(caf::actor_system& system,
                                       std::shared_ptr<const classroom_setup> setup,
                                       const role_generators& generators,
                                       std::vector<dialog_job> jobs, const result_sink& sink,
                                       const rollout_options& options) {
  // A sink that throws (a full disk) stops the rollout, and its exception is the caller's.
  struct sink_failure {
    std::mutex mutex;
    std::exception_ptr error;
  };
  auto failure = std::make_shared<sink_failure>();
  result_sink guarded;
  if (sink)
    guarded = [sink, failure](const dialog_result& r) {
      std::lock_guard guard{failure->mutex};
      if (failure->error)
        return;
      try {
        sink(r);
      } catch (...) {
        failure->error = std::current_exception();
      }
    };
  auto guarded_options = options;
  guarded_options.stop = [stop = options.stop, failure] {
    {
      std::lock_guard guard{failure->mutex};
      if (failure->error)
        return true;
    }
    return stop && stop();
  };
  caf::scoped_actor self{system};
  auto schedule = spawn_rollout(system, std::move(setup), generators, std::move(jobs), guarded,
                                guarded_options, self, 0);
  self->monitor(schedule);
  std::vector<dialog_result> out;
  bool done = false;
  std::string died;
  while (!done && died.empty())
    self->receive(
      [&](rollout_done_atom, int64_t, std::vector<dialog_result>& results) {
        out = std::move(results);
        done = true;
      },
      [&](caf::down_msg& down) {
        if (down.source == schedule.address())
          died = system.render(down.reason);
      },
      // The schedule bounds every dialog (finite request timeouts, the stop predicate): this
      // only wakes up now and then.
      caf::after(std::chrono::seconds(1)) >> [] {});
  {
    std::lock_guard guard{failure->mutex};
    if (failure->error)
      std::rethrow_exception(failure->error);
  }
  if (!done)
    throw std::runtime_error("the rollout schedule stopped: " + died);
  return out;
}

std::vector<dialog_result> run_lockstep(caf::actor_system& system,
                                        std::shared_ptr<const classroom_setup> setup,
                                        const role_generators& generators,
                                        std::vector<dialog_job> jobs, const result_sink& sink) {
  std::vector<dialog_runner> runners;
  std::vector<std::optional<dialog_call>> calls;
  std::vector<std::optional<dialog_result>> results(jobs.size());
  for (auto& job : jobs) {
    runners.emplace_back(setup, std::move(job));
    calls.push_back(next_call(runners.back()));
  }
  caf::scoped_actor self{system};
  const caf::duration timeout{setup->request_timeout};
  for (;;) {
    // The earliest phase any dialog waits in; every dialog in it goes, the rest wait.
    std::optional<call_stage> stage;
    for (const auto& c : calls)
      if (c && (!stage || c->stage < *stage))
        stage = c->stage;
    if (!stage)
      break;
    std::vector<size_t> members;
    for (size_t i = 0; i < calls.size(); ++i)
      if (calls[i] && calls[i]->stage == *stage)
        members.push_back(i);
    auto on_error = [&](size_t i) {
      return [&, i](caf::error& e) {
        runners[i].on_failure(failure_text(system, e), retryable(e));
      };
    };
    if (*stage == call_stage::close) {
      using handle =
        decltype(self->request(generators.tutor, caf::infinite, close_atom::value, std::string()));
      std::vector<std::pair<size_t, handle>> sent;
      for (size_t i : members)
        sent.emplace_back(i, self->request(generator_for(generators, calls[i]->role), timeout,
                                           close_atom::value, calls[i]->request.session));
      for (auto& [i, h] : sent)
        h.receive([&, i = i](token_history& history) { runners[i].on_closed(std::move(history)); },
                  on_error(i));
    } else {
      using handle = decltype(self->request(generators.tutor, caf::infinite, generate_atom::value,
                                            generate_request()));
      std::vector<std::pair<size_t, handle>> sent;
      for (size_t i : members) {
        const auto& generator = generator_for(generators, calls[i]->role);
        if (!generator) {
          runners[i].abort("no generator for this role");
          continue;
        }
        sent.emplace_back(
          i, self->request(generator, timeout, generate_atom::value, calls[i]->request));
      }
      for (auto& [i, h] : sent)
        h.receive([&, i = i](generate_reply& reply) { runners[i].on_reply(std::move(reply)); },
                  on_error(i));
    }
    for (size_t i : members) {
      calls[i] = next_call(runners[i]);
      if (!calls[i]) {
        results[i] = runners[i].finish();
        if (sink)
          sink(*results[i]);
      }
    }
  }
  std::vector<dialog_result> out;
  for (size_t i = 0; i < runners.size(); ++i)
    out.push_back(results[i] ? std::move(*results[i]) : runners[i].finish());
  return out;
}

rollout_options rollout_options_from(const config::config& cfg) {
  rollout_options o;
  o.max_in_flight = cfg.classroom.max_dialogs_in_flight;
  if (o.max_in_flight == 0) {
    const auto& tutor = cfg.tutor;
    o.max_in_flight =
      2 * (tutor.backend == config::backend_kind::openai ? tutor.openai.max_concurrency
                                                         : tutor.max_batch_sequences);
  }
  return o;
}

} // namespace pedagogy::actors
