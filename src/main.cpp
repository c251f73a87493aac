#include "app/run.hpp"

int main(int argc, char** argv) { return preforkctl::app::run(argc, argv); }
