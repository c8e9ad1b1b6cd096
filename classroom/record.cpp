// dialogs.jsonl lines (see record.hpp).
#include "classroom/record.hpp"

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

} // namespace pedagogy::classroom
