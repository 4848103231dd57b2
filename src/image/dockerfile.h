// image/dockerfile — the Dockerfile subset `stratus build` understands, parsed into stages
// of instructions. Variable expansion and word splitting are separate so that the builder
// expands with the ARG/ENV values in effect at each step.
//
// Supported: FROM [--platform=…] IMAGE [AS NAME], COPY/ADD [--from=…] [--chown=…] [--chmod=…],
// RUN, ENV, ARG, WORKDIR, USER, EXPOSE, ENTRYPOINT, CMD, LABEL; comments, line
// continuations (backslash), `# escape=` is not (backslash only). Anything else is
// InvalidArgument naming the line. Pure functions; thread-safe.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace image {

struct Instruction {
  int line = 0;                    // 1-based line of the keyword
  std::string keyword;             // upper-case
  std::vector<std::string> flags;  // "--from=builder" (leading --flag=value words)
  std::string args;                // the rest, continuations joined, trimmed
  bool exec_form = false;          // args was a JSON array of strings
  std::vector<std::string> exec;   // its elements
  std::string Text() const;        // "RUN echo hi", for progress and errors
};

struct Stage {
  std::string base;  // FROM's image (unexpanded)
  std::string name;  // AS name, lower-cased; may be empty
  Instruction from;
  std::vector<Instruction> steps;
};

struct Dockerfile {
  std::vector<Instruction> global_args;  // ARGs before the first FROM
  std::vector<Stage> stages;
};

base::Result<Dockerfile> ParseDockerfile(std::string_view text);

// Expands $VAR, ${VAR}, ${VAR:-default} and ${VAR:+alt}; `\$` is a literal $. Unset
// variables expand to "".
using Lookup = std::function<std::optional<std::string>(const std::string&)>;
std::string ExpandVariables(std::string_view text, const Lookup& lookup);

// Splits shell-like words: whitespace separates, '…' and "…" quote, backslash escapes.
base::Result<std::vector<std::string>> SplitWords(std::string_view text);

// "KEY=VALUE KEY2=VALUE2" (or the legacy "KEY VALUE" form for ENV/LABEL) into pairs.
base::Result<std::vector<std::pair<std::string, std::string>>> ParseKeyValues(std::string_view text,
                                                                              bool allow_legacy);

}  // namespace image
