// Announces the protocol's message types to CAF (see protocol.hpp).
#include "actors/protocol.hpp"

#include "rl/dialog.hpp"

namespace pedagogy::actors {

void add_message_types(caf::actor_system_config& config) {
  config.add_message_type<models::chat_message>("pedagogy::chat_message");
  config.add_message_type<std::vector<models::chat_message>>("std::vector<pedagogy::chat_message>");
  config.add_message_type<generate_request>("pedagogy::generate_request");
  config.add_message_type<generated_text>("pedagogy::generated_text");
  config.add_message_type<std::vector<generated_text>>("std::vector<pedagogy::generated_text>");
  config.add_message_type<generate_reply>("pedagogy::generate_reply");
  config.add_message_type<token_history>("pedagogy::token_history");
  config.add_message_type<generator_status>("pedagogy::generator_status");
  config.add_message_type<learner_status>("pedagogy::learner_status");
  config.add_message_type<trainer_status>("pedagogy::trainer_status");
  config.add_message_type<dialog_progress>("pedagogy::dialog_progress");
  config.add_message_type<inspected_actor>("pedagogy::inspected_actor");
  config.add_message_type<rank_actor>("pedagogy::rank_actor");
  config.add_message_type<std::vector<rank_actor>>("std::vector<pedagogy::rank_actor>");
  config.add_message_type<classroom::dialog_record>("pedagogy::dialog_record");
  config.add_message_type<dialog_result>("pedagogy::dialog_result");
  config.add_message_type<std::vector<dialog_result>>("std::vector<pedagogy::dialog_result>");
  config.add_message_type<rollout_batch>("pedagogy::rollout_batch");
  config.add_message_type<models::learn_report>("pedagogy::learn_report");
  config.add_message_type<models::ped_score>("pedagogy::ped_score");
  config.add_message_type<std::vector<models::ped_score>>("std::vector<pedagogy::ped_score>");
}

} // namespace pedagogy::actors
