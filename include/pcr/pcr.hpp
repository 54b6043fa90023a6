#pragma once

// The public C++ API of pcr in one include. A pipeline is a `pcr::Pipeline` of steps;
// a command is a function of the job's context; `pcr::run_main` runs it with the
// options of `pcr run`.

#include <pcr/cli/app.hpp>
#include <pcr/config/loader.hpp>
#include <pcr/docker/compose.hpp>
#include <pcr/docker/helpers.hpp>
#include <pcr/docker/hosts.hpp>
#include <pcr/pipeline/builder.hpp>
#include <pcr/pipeline/engine.hpp>
#include <pcr/pipeline/events.hpp>
#include <pcr/pipeline/model.hpp>
#include <pcr/util/shell.hpp>

namespace pcr {

using pipeline::Command;
using pipeline::JobContext;
using pipeline::OutputCheck;
using pipeline::OutputMode;
using pipeline::Pipeline;
using pipeline::Host;
using pipeline::Step;

using pipeline::command;
using pipeline::commands_step;
using pipeline::for_each_step;
using pipeline::parallel_step;
using pipeline::run_step;

using cli::run_main;
using util::shell_join;
using util::shell_quote;

}  // namespace pcr
