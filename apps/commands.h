// apps/commands.h: the subcommands of the one `scconv` binary, a file each (apps/cmd_*.cpp).
#pragma once
#include <string>
#include <vector>

namespace scconv::apps {

using Args = std::vector<std::string>;  // the arguments after the subcommand name

int cmd_demo(const Args& args);
int cmd_summary(const Args& args);
int cmd_forward(const Args& args);
int cmd_train(const Args& args);
int cmd_eval(const Args& args);
int cmd_bench(const Args& args);
int cmd_explain(const Args& args);
int cmd_report(const Args& args);
int cmd_ablate(const Args& args);

}  // namespace scconv::apps
