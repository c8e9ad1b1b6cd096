// dialogs.jsonl lines (see record.hpp).
#include "classroom/record.hpp"

#include "runtime/errors.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace pedagogy::classroom {

std::string to_json_line(const dialog_record& r) {
  using nlohmann::json;
  json messages = json::array(), student_view = json::array(), judgements = json::array(),
       solutions = json::array();
  for (const auto& m : r.messages) {
    const char* role = m.from_tutor ? "tutor" : "student";
    messages.push_back({{"role", role}, {"content", m.content}, {"tokens", m.tokens}});
    student_view.push_back({{"role", role}, {"content", visible_text(m.content)}});
  }
  for (const auto& j : r.judgements) {
    json verdicts = json::array();
    for (const auto& v : j.verdicts)
      verdicts.push_back(
        {{"decision", v.value == decision::ok ? "OK" : "REJECT"}, {"reasoning", v.reasoning}});
    judgements.push_back({{"rule", j.rule}, {"verdicts", verdicts}, {"unparsed", j.unparsed}});
  }
  for (const auto& s : r.solutions)
    solutions.push_back(
      {{"text", s.text}, {"extracted", s.extracted}, {"correct", s.correct}, {"tokens", s.tokens}});
  const auto& w = r.reward;
  json reward = {{"total", w.total},           {"end", w.end},       {"thinking", w.thinking},
                 {"end_marker", w.end_marker}, {"length", w.length}, {"solve_rate", nullptr}};
  if (w.solve_rate)
    reward["solve_rate"] = *w.solve_rate;
  json out = {{"id", r.id},
              {"status", r.status},
              {"step", r.step},
              {"problem_index", r.problem_index},
              {"sample", r.sample},
              {"problem", r.problem},
              {"answer", r.answer},
              {"type", r.type},
              {"student_name", r.student_name},
              {"persona", r.persona},
              {"messages", messages},
              {"student_view", student_view},
              {"judgements", judgements},
              {"solutions", solutions},
              {"reward", reward},
              {"rejected", r.rejected},
              {"ended_by_tutor", r.ended_by_tutor},
              {"tutor_turns", r.tutor_turns},
              {"tokens",
               {{"tutor", r.tutor_tokens},
                {"student", r.student_tokens},
                {"judge", r.judge_tokens},
                {"solutions", r.solution_tokens}}},
              {"weights_version", r.weights_version},
              {"seconds", r.seconds},
              {"waiting_seconds", r.waiting_seconds},
              {"ped_teacher", r.ped_teacher}};
  if (r.status != "ok")
    out["error"] = r.error;
  return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

dialog_record from_json_line(const std::string& line, const std::string& where) {
  using nlohmann::json;
  const auto j = json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    throw input_error(where, "not a JSON object",
                      "each line is one dialog record as pedagogy wrote it; a line cut short by "
                      "an interrupted write can be deleted");
  const std::string* field = nullptr;
  try {
    auto get = [&](const json& from, const std::string& key) -> const json& {
      field = &key;
      return from.at(key);
    };
    dialog_record r;
    r.id = get(j, "id").get<std::string>();
    r.status = get(j, "status").get<std::string>();
    if (j.contains("error"))
      r.error = j["error"].get<std::string>();
    r.step = get(j, "step").get<int64_t>();
    r.problem_index = get(j, "problem_index").get<int64_t>();
    r.sample = get(j, "sample").get<int64_t>();
    r.problem = get(j, "problem").get<std::string>();
    r.answer = get(j, "answer").get<std::string>();
    r.type = get(j, "type").get<std::string>();
    r.student_name = get(j, "student_name").get<std::string>();
    r.persona = get(j, "persona").get<std::string>();
    for (const auto& m : get(j, "messages"))
      r.messages.push_back({get(m, "role").get<std::string>() == "tutor",
                            get(m, "content").get<std::string>(), get(m, "tokens").get<int64_t>()});
    for (const auto& jr : get(j, "judgements")) {
      judge_record one;
      one.rule = get(jr, "rule").get<std::string>();
      one.unparsed = get(jr, "unparsed").get<int64_t>();
      for (const auto& v : get(jr, "verdicts"))
        one.verdicts.push_back(
          {get(v, "decision").get<std::string>() == "OK" ? decision::ok : decision::reject,
           get(v, "reasoning").get<std::string>()});
      r.judgements.push_back(std::move(one));
    }
    for (const auto& sj : get(j, "solutions"))
      r.solutions.push_back({get(sj, "text").get<std::string>(),
                             get(sj, "extracted").get<std::string>(),
                             get(sj, "correct").get<bool>(), get(sj, "tokens").get<int64_t>()});
    const auto& w = get(j, "reward");
    r.reward.total = get(w, "total").get<double>();
    r.reward.end = get(w, "end").get<double>();
    r.reward.thinking = get(w, "thinking").get<double>();
    r.reward.end_marker = get(w, "end_marker").get<double>();
    r.reward.length = get(w, "length").get<double>();
    if (const auto& rate = get(w, "solve_rate"); !rate.is_null())
      r.reward.solve_rate = rate.get<double>();
    r.rejected = get(j, "rejected").get<bool>();
    r.ended_by_tutor = get(j, "ended_by_tutor").get<bool>();
    r.tutor_turns = get(j, "tutor_turns").get<int64_t>();
    const auto& t = get(j, "tokens");
    r.tutor_tokens = get(t, "tutor").get<int64_t>();
    r.student_tokens = get(t, "student").get<int64_t>();
    r.judge_tokens = get(t, "judge").get<int64_t>();
    r.solution_tokens = get(t, "solutions").get<int64_t>();
    r.weights_version = get(j, "weights_version").get<int64_t>();
    r.seconds = get(j, "seconds").get<double>();
    r.waiting_seconds = get(j, "waiting_seconds").get<double>();
    r.ped_teacher = get(j, "ped_teacher").get<bool>();
    return r;
  } catch (const json::exception& e) {
    throw input_error(where,
                      fmt::format("field '{}' is missing or has the wrong type ({})",
                                  field ? *field : std::string("?"), e.what()),
                      "each line is one dialog record as pedagogy wrote it");
  }
}

} // namespace pedagogy::classroom
