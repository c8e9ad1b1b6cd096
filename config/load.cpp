// Reads TOML into the config structs and applies command-line overrides. The only file that
// includes toml++ (its Debian build is a compiled library; see dependencies.md §4.6).
#include "config/config.hpp"
#include "config/fields.hpp"
#include "runtime/errors.hpp"
#include "runtime/files.hpp"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <set>
#include <type_traits>

namespace pedagogy::config {

namespace {

std::string type_name(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::none:
      return "nothing";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
    case toml::node_type::time:
    case toml::node_type::date_time:
      return "a date/time";
  }
  return "an unknown value";
}

// Where a value came from: "file:line:column" for file input, the override text otherwise.
struct origin {
  std::string source;     // file name, "<preset x>", or empty for overrides
  std::string assignment; // the override text when the value came from the command line

  std::string at(const toml::source_region& region) const {
    if (!assignment.empty())
      return fmt::format("override '{}'", assignment);
    if (region.begin.line == 0)
      return source;
    return fmt::format("{}:{}:{}", source, region.begin.line, region.begin.column);
  }
};

// Converts one TOML value into a config member, or throws input_error naming key and place;
// integers outside the key's range are refused here, where their place is known.
class value_reader {
public:
  value_reader(const origin& where, std::string key, const knob& k)
    : where_(where), key_(std::move(key)), knob_(k) {}

  void read(const toml::node& node, bool& out) const {
    if (!node.is_boolean())
      mismatch(node, "a boolean", "write true or false, without quotes");
    out = node.as_boolean()->get();
  }

  void read(const toml::node& node, int64_t& out) const {
    if (!node.is_integer())
      mismatch(node, "an integer", "write a whole number without quotes, e.g. 8");
    const int64_t value = node.as_integer()->get();
    check_range(where_.at(node.source()), key_, value, knob_);
    out = value;
  }

  void read(const toml::node& node, double& out) const {
    double value = 0;
    if (node.is_integer())
      value = static_cast<double>(node.as_integer()->get());
    else if (node.is_floating_point())
      value = node.as_floating_point()->get();
    else
      mismatch(node, "a number", "write a number without quotes, e.g. 0.25 or 5e-7");
    check_range(where_.at(node.source()), key_, value, knob_);
    out = value;
  }

  void read(const toml::node& node, std::string& out) const {
    if (!node.is_string())
      mismatch(node, "a string", "put the text in double quotes");
    const std::string& text = node.as_string()->get();
    // TOML allows "\u0000"; every string here ends up as a C string (a path, a URL, a name) that
    // would silently stop at it.
    if (text.find('\0') != std::string::npos)
      throw input_error(where_.at(node.source()), fmt::format("{} contains a NUL character", key_),
                        "remove the \\u0000 escape");
    out = text;
  }

  template <config_enum E>
  void read(const toml::node& node, E& out) const {
    if (!node.is_string())
      mismatch(node, fmt::format("one of {}", enum_choices<E>()),
               "write the choice in double quotes");
    const std::string& text = node.as_string()->get();
    auto value = enum_from_string<E>(text);
    if (!value)
      throw input_error(where_.at(node.source()),
                        fmt::format("'{}' is not a valid value for {}", text, key_),
                        fmt::format("use one of {}", enum_choices<E>()));
    out = *value;
  }

  template <class T>
  void read(const toml::node& node, std::vector<T>& out) const {
    if (!node.is_array())
      mismatch(node, "an array", "write a list in brackets, e.g. [] or [\"a\", \"b\"]");
    std::vector<T> values;
    size_t index = 0;
    for (const toml::node& element : *node.as_array()) {
      T value{};
      value_reader{where_, fmt::format("{}[{}]", key_, index++), knob_}.read(element, value);
      values.push_back(std::move(value));
    }
    out = std::move(values);
  }

private:
  [[noreturn]] void mismatch(const toml::node& node, const std::string& expected,
                             const std::string& hint) const {
    throw input_error(where_.at(node.source()),
                      fmt::format("{} must be {}, but is {}", key_, expected, type_name(node)),
                      hint);
  }

  const origin& where_;
  std::string key_;
  const knob& knob_;
};

// Reads a value into `member` only when it is acceptable, so that a refused override leaves the
// config as it was. A key whose feature is not built keeps its default: reading it must not
// change the member, which holds the default (or a file value already checked against it).
template <class T, class Read>
void read_member(T& member, const knob& k, const std::string& where, const std::string& key,
                 Read&& read) {
  T value = member;
  read(value);
  if (!k.built && !(value == member))
    refuse_unbuilt(where, key);
  member = std::move(value);
}

std::string unknown_key_hint(const std::string& path) {
  std::string nearest = nearest_key(path);
  if (!nearest.empty())
    return fmt::format("did you mean '{}'?", nearest);
  return "`pedagogy config show` lists every valid key";
}

// Walks one TOML table alongside its struct (a describe() visitor); unknown keys are errors.
class table_reader {
public:
  table_reader(const toml::table& table, const origin& where, std::string prefix)
    : table_(table), where_(where), prefix_(std::move(prefix)) {}

  template <class T>
  void field(std::string_view name, T& member, const knob& k) {
    known_.insert(std::string(name));
    if (const toml::node* node = table_.get(name)) {
      const std::string key = prefix_ + std::string(name);
      if (node->is_table())
        throw input_error(where_.at(node->source()), fmt::format("{} is a value, not a table", key),
                          fmt::format("write `{} = ...` inside [{}]", name, table_path()));
      read_member(member, k, where_.at(node->source()), key, [&](T& value) {
        value_reader{where_, key, k}.read(*node, value);
      });
    }
  }

  template <class S>
  void table(std::string_view name, S& member) {
    known_.insert(std::string(name));
    const toml::node* node = table_.get(name);
    if (node == nullptr)
      return;
    const std::string path = prefix_ + std::string(name);
    if (!node->is_table())
      throw input_error(where_.at(node->source()), fmt::format("{} must be a table", path),
                        fmt::format("write its keys under a [{}] header", path));
    table_reader inner{*node->as_table(), where_, path + "."};
    describe(inner, member);
    inner.reject_unknown_keys();
  }

  void reject_unknown_keys() const {
    for (auto&& [key, node] : table_) {
      std::string name(key.str());
      if (known_.count(name) != 0)
        continue;
      std::string path = prefix_ + name;
      std::string what = prefix_.empty()
                           ? fmt::format("unknown {} '{}'", node.is_table() ? "table" : "key", path)
                           : fmt::format("unknown key '{}' in [{}]", path, table_path());
      throw input_error(where_.at(key.source()), what, unknown_key_hint(path));
    }
  }

private:
  std::string table_path() const {
    return prefix_.empty() ? std::string{} : prefix_.substr(0, prefix_.size() - 1);
  }

  const toml::table& table_;
  const origin& where_;
  std::string prefix_;
  std::set<std::string> known_;
};

// The first key of a table, for hints.
struct first_key {
  std::string name;
  template <class T>
  void field(std::string_view n, T&, const knob&) {
    if (name.empty())
      name = n;
  }
  template <class S>
  void table(std::string_view n, S&) {
    if (name.empty())
      name = n;
  }
};

// Finds the member named by a dotted path and reads a TOML value into it.
class override_writer {
public:
  override_writer(std::string_view path, std::string_view value, const origin& where)
    : path_(path), value_(value), where_(where) {}

  template <class T>
  void field(std::string_view name, T& member, const knob& k) {
    if (prefix_ + std::string(name) != path_)
      return;
    found_ = true;
    read_member(member, k, where_.at({}), path_, [&](T& value) { read(value, k); });
  }

  template <class S>
  void table(std::string_view name, S& member) {
    const std::string path = prefix_ + std::string(name);
    if (path == path_)
      throw input_error(fmt::format("override '{}'", where_.assignment),
                        fmt::format("{} is a table, not a single value", path),
                        fmt::format("set one of its keys, e.g. {}", first_key_of(member, path)));
    if (path_.rfind(path + ".", 0) != 0)
      return;
    std::string saved = prefix_;
    prefix_ = path + ".";
    describe(*this, member);
    prefix_ = saved;
  }

  bool found() const {
    return found_;
  }

private:
  template <class T>
  void read(T& member, const knob& k) const {
    constexpr bool textual = std::is_same_v<T, std::string> || config_enum<T>;
    // Hydra style: a bare word is the string itself (tutor.device=cpu).
    if (textual && !value_.empty() && value_.front() != '"' && value_.front() != '\'') {
      toml::value<std::string> node{std::string(value_)};
      value_reader{where_, path_, k}.read(node, member);
      return;
    }
    toml::table parsed;
    try {
      const std::string document = "value = " + std::string(value_);
      parsed = toml::parse(std::string_view{document}, std::string_view{"<override>"});
    } catch (const toml::parse_error& e) {
      throw input_error(
        fmt::format("override '{}'", where_.assignment),
        fmt::format("cannot parse '{}' as a value for {}: {}", value_, path_, e.description()),
        value_hint<T>());
    }
    value_reader{where_, path_, k}.read(*parsed.get("value"), member);
  }

  // How to write a value of the key's type on the command line.
  template <class T>
  static std::string value_hint() {
    if constexpr (std::is_same_v<T, double>)
      return "write a number, e.g. 0.25 or 5e-7";
    else if constexpr (std::is_same_v<T, int64_t>)
      return "write a whole number, e.g. 8";
    else if constexpr (std::is_same_v<T, bool>)
      return "write true or false";
    else if constexpr (std::is_same_v<T, std::vector<int64_t>>)
      return "write a list of whole numbers, e.g. [0, 1]";
    else
      return "quote strings (key='\"text\"') and write lists as [\"a\", \"b\"]";
  }

  template <class S>
  static std::string first_key_of(S& member, const std::string& path) {
    first_key visitor;
    describe(visitor, member);
    return fmt::format("{}.{}=...", path, visitor.name);
  }

  std::string path_;
  std::string_view value_;
  const origin& where_;
  std::string prefix_;
  bool found_ = false;
};

config parse_toml(std::string_view text, const std::string& source) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    const auto& begin = e.source().begin;
    throw input_error(fmt::format("{}:{}:{}", source, begin.line, begin.column),
                      fmt::format("TOML syntax error: {}", e.description()),
                      "see https://toml.io for the syntax; strings need double quotes");
  }
  config cfg;
  origin where{source, {}};
  table_reader reader{root, where, ""};
  describe(reader, cfg);
  reader.reject_unknown_keys();
  return cfg;
}

} // namespace

void apply_override(config& cfg, std::string_view assignment) {
  const std::string where = fmt::format("override '{}'", assignment);
  // TOML would read a second line as a second key, which the override would set unseen.
  if (assignment.find_first_of("\r\n") != std::string_view::npos) {
    std::string shown(assignment);
    for (size_t at = 0; (at = shown.find_first_of("\r\n", at)) != std::string::npos;)
      shown.replace(at, 1, shown[at] == '\n' ? "\\n" : "\\r");
    throw input_error(fmt::format("override '{}'", shown),
                      "an override must not contain a line break",
                      "give one section.key=value per argument; inside a TOML string write \\n");
  }
  auto eq = assignment.find('=');
  if (eq == std::string_view::npos || eq == 0)
    throw input_error(where, "an override must look like section.key=value",
                      "e.g. train.learning_rate=1e-6 or classroom.ignore_rejected_judge=true");
  std::string_view path = assignment.substr(0, eq);
  std::string_view value = assignment.substr(eq + 1);
  while (!path.empty() && path.back() == ' ')
    path.remove_suffix(1);
  while (!value.empty() && value.front() == ' ')
    value.remove_prefix(1);
  if (value.empty())
    throw input_error(where, fmt::format("no value given for {}", path),
                      "write key=value; an empty string is key='\"\"'");

  origin origin_of{"", std::string(assignment)};
  override_writer writer{path, value, origin_of};
  describe(writer, cfg);
  if (!writer.found())
    throw input_error(where, fmt::format("unknown key '{}'", path),
                      unknown_key_hint(std::string(path)));
}

config load_string(std::string_view toml_text, std::string_view source,
                   const std::vector<std::string>& overrides) {
  config cfg = parse_toml(toml_text, std::string(source));
  for (const auto& assignment : overrides)
    apply_override(cfg, assignment);
  // A rule that relates several keys may have been broken by an override as well as the file.
  std::string where(source);
  for (size_t i = 0; i < overrides.size(); ++i)
    where += fmt::format("{}'{}'", i == 0 ? " with override " : ", ", overrides[i]);
  validate(cfg, where);
  return cfg;
}

config load_file(const std::filesystem::path& path, const std::vector<std::string>& overrides) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    throw input_error(path.string(), "config file not found",
                      "pass an existing file to --config, e.g. config/tiny.toml");
  const std::string text =
    files::read_regular_file(path, "pass a .toml file to --config, e.g. config/tiny.toml");
  return load_string(text, path.string(), overrides);
}

} // namespace pedagogy::config
