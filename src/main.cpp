#include <pcr/cli/app.hpp>

int main(int argc, char** argv) { return pcr::cli::main(argc, argv); }
