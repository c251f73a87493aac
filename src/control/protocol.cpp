#include "control/protocol.hpp"

namespace preforkctl::control {

const char* command_name(const Request& request) {
    struct Name {
        const char* operator()(const request::Status&) const { return "status"; }
        const char* operator()(const request::Scale&) const { return "scale"; }
        const char* operator()(const request::Restart&) const { return "restart"; }
        const char* operator()(const request::Reload&) const { return "reload"; }
        const char* operator()(const request::Stop&) const { return "stop"; }
        const char* operator()(const request::Signal&) const { return "signal"; }
    };
    return std::visit(Name{}, request);
}

}  // namespace preforkctl::control
