#pragma once

#include <functional>
#include <string>

namespace syncmesh {

/// Severity of a log line.
enum class log_level { quiet = 0, error, warning, info, debug };

/// Sets the process-wide level; lines above it are dropped.
void set_log_level(log_level level);

/// The process-wide level.
log_level current_log_level();

/// Parses "quiet", "error", "warning", "info" or "debug"; false otherwise.
bool parse_log_level(const std::string& text, log_level& out);

/// True when lines of `level` are printed.
bool log_enabled(log_level level);

/// "ERROR", "WARN", "INFO" or "DEBUG".
const char* log_level_name(log_level level);

/// Receives the log lines that pass the level instead of stderr: the test
/// kit stamps them with virtual time and its node names, and records them.
using log_sink = std::function<void(log_level level, const std::string& node,
                                    const std::string& text)>;

/// Installs `sink` process-wide (empty: stderr again); returns the one it
/// replaces.
log_sink set_log_sink(log_sink sink);

/// Writes one line to stderr (or the sink): time, level, node ID (short hex)
/// and text.
void log_line(log_level level, const std::string& node,
              const std::string& text);

} // namespace syncmesh
