#pragma once
// Reading TOML tables with every problem named by its key ("limits.late_grace: must be ..."):
// what the config and the rate table share. Each check appends to the caller's error list and
// returns nullopt for a value it refuses.
#include <toml++/toml.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "config.hpp"
#include "simcap/engine.hpp"

namespace simcap {

// Parses TOML text into out; the error names `what` and the line.
inline std::optional<std::string> parse_toml(std::string_view text, const char* what,
                                             toml::table& out) {
  try {
    out = toml::parse(text);
  } catch (const toml::parse_error& e) {
    return std::string(what) + " (line " + std::to_string(e.source().begin.line) +
           "): " + std::string(e.description());
  }
  return std::nullopt;
}

class toml_reader {
 public:
  explicit toml_reader(std::vector<std::string>& errors) : errors_(errors) {}

  void error(const std::string& key, const std::string& why) {
    errors_.push_back(key + ": " + why);
  }

  // Complains about keys of a table that are not in `known`.
  void only(const toml::table& t, const std::string& prefix, std::set<std::string> known) {
    for (auto&& [k, v] : t) {
      if (!known.contains(std::string(k.str())))
        error(prefix + std::string(k.str()), "unknown key");
    }
  }

  template <class T>
  std::optional<T> get(const toml::table& t, const std::string& prefix, const char* key) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return std::nullopt;
    if (auto v = n->value<T>()) return *v;
    error(prefix + key, std::string("must be a ") + type_name<T>());
    return std::nullopt;
  }

  // A duration from min to max (both named in the message).
  std::optional<std::chrono::milliseconds> duration(const toml::table& t, const std::string& prefix,
                                                    const char* key, std::chrono::milliseconds min,
                                                    std::chrono::milliseconds max,
                                                    const char* range) {
    auto s = get<std::string>(t, prefix, key);
    if (!s) return std::nullopt;
    auto d = parse_duration(*s);
    if (!d) {
      error(prefix + key, "must be a duration like \"200ms\", \"5m\", \"48h\" or \"30d\"");
    } else if (*d < min || *d > max) {
      error(prefix + key, std::string("must be ") + range);
      return std::nullopt;
    }
    return d;
  }

  // An integer from min to max.
  std::optional<std::int64_t> number(const toml::table& t, const std::string& prefix,
                                     const char* key, std::int64_t min, std::int64_t max,
                                     const char* range) {
    auto n = get<std::int64_t>(t, prefix, key);
    if (n && (*n < min || *n > max)) {
      error(prefix + key, std::string("must be ") + range);
      return std::nullopt;
    }
    return n;
  }

  // A size in bytes from min to max: an integer, or a string of digits and a unit K, M, G or T
  // (powers of 1024, as systemd reads them; "KB", "KiB" and "K" are the same).
  std::optional<std::uint64_t> size(const toml::table& t, const std::string& prefix,
                                    const char* key, std::uint64_t min, std::uint64_t max,
                                    const char* range) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return std::nullopt;
    std::optional<std::uint64_t> v;
    if (auto i = n->value<std::int64_t>()) {
      if (*i >= 0) v = static_cast<std::uint64_t>(*i);
    } else if (auto s = n->value<std::string>()) {
      v = parse_size(*s);
    }
    if (!v) {
      error(prefix + key, "must be a size like 268435456, \"256MB\" or \"2GiB\"");
    } else if (*v < min || *v > max) {
      error(prefix + key, std::string("must be ") + range);
      v.reset();
    }
    return v;
  }
  static std::optional<std::uint64_t> parse_size(std::string_view s) {
    std::uint64_t n = 0;
    std::size_t i = 0;
    for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
      if (n > (UINT64_MAX - 9) / 10) return std::nullopt;
      n = n * 10 + static_cast<std::uint64_t>(s[i] - '0');
    }
    if (i == 0) return std::nullopt;
    std::string_view unit = s.substr(i);
    if (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
    int shift = 0;
    if (!unit.empty() && unit != "B") {
      const char u = unit.front();
      shift = u == 'K' || u == 'k' ? 10 : u == 'M' ? 20 : u == 'G' ? 30 : u == 'T' ? 40 : -1;
      unit.remove_prefix(1);
      if (shift < 0 || !(unit.empty() || unit == "B" || unit == "iB")) return std::nullopt;
    }
    if (shift > 0 && n > (UINT64_MAX >> shift)) return std::nullopt;
    return n << shift;
  }

  void address(const toml::table& t, const std::string& prefix, const char* key, std::string& out) {
    if (auto s = get<std::string>(t, prefix, key)) {
      if (split_host_port(*s)) {
        out = *s;
      } else {
        error(prefix + key, "must be ADDRESS:PORT");
      }
    }
  }

  // An array of strings (what names them in the message, e.g. "product ids").
  std::optional<std::vector<std::string>> strings(const toml::table& t, const std::string& prefix,
                                                  const char* key, const char* what) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return std::nullopt;
    std::vector<std::string> out;
    const toml::array* a = n->as_array();
    for (std::size_t i = 0; a != nullptr && i < a->size(); ++i) {
      if (auto v = (*a)[i].value<std::string>())
        out.push_back(*v);
      else
        a = nullptr;
    }
    if (a == nullptr) {
      error(prefix + key, std::string("must be an array of ") + what);
      return std::nullopt;
    }
    return out;
  }

  std::optional<std::vector<double>> thresholds(const toml::table& t, const std::string& prefix) {
    const toml::node* n = t.get("alert_thresholds");
    if (n == nullptr) return std::nullopt;
    const toml::array* a = n->as_array();
    if (a == nullptr) {
      error(prefix + "alert_thresholds", "must be an array of numbers");
      return std::nullopt;
    }
    std::vector<double> out;
    for (const auto& e : *a) {
      auto d = e.value<double>();
      if (!d) {
        error(prefix + "alert_thresholds", "must be an array of numbers");
        return std::nullopt;
      }
      out.push_back(*d);
    }
    if (auto why = check_alert_thresholds(out)) {
      error(prefix + "alert_thresholds", *why + ", e.g. [0.9]");
      return std::nullopt;
    }
    return out;
  }

  // The tables of an array of tables ([[name]]) with their key prefixes ("zones[0].").
  std::vector<std::pair<std::string, const toml::table*>> tables(const toml::table& root,
                                                                 const std::string& prefix,
                                                                 const char* name) {
    std::vector<std::pair<std::string, const toml::table*>> out;
    const toml::node* n = root.get(name);
    if (n == nullptr) return out;
    const toml::array* a = n->as_array();
    if (a == nullptr) {
      error(prefix + name, "must be an array of tables ([[" + std::string(name) + "]])");
      return out;
    }
    for (std::size_t i = 0; i < a->size(); ++i) {
      std::string p = prefix + name + "[" + std::to_string(i) + "].";
      if (const toml::table* t = (*a)[i].as_table())
        out.push_back({p, t});
      else
        error(p.substr(0, p.size() - 1), "must be a table");
    }
    return out;
  }

 private:
  template <class T>
  static const char* type_name() {
    if constexpr (std::is_same_v<T, std::string>) return "string";
    if constexpr (std::is_same_v<T, bool>) return "boolean";
    if constexpr (std::is_same_v<T, double>) return "number";
    return "integer";
  }
  std::vector<std::string>& errors_;
};

}  // namespace simcap
