#include "preload/listeners.hpp"

#include <arpa/inet.h>

#include <cstring>

namespace preforkctl::preload {

namespace {

// Reads a decimal number of at most `max` up to `stop`; advances `text` past `stop`.
bool read_number(const char*& text, char stop, unsigned long max, unsigned long& value) {
    value = 0;
    const char* start = text;
    while (*text >= '0' && *text <= '9') {
        value = value * 10 + static_cast<unsigned long>(*text - '0');
        if (value > max) return false;
        ++text;
    }
    if (text == start || *text != stop) return false;
    ++text;
    return true;
}

// Matches `word` followed by `stop`; advances `text` past `stop`.
bool read_word(const char*& text, const char* word, char stop) {
    const std::size_t length = std::strlen(word);
    if (std::strncmp(text, word, length) != 0 || text[length] != stop) return false;
    text += length + 1;
    return true;
}

// "HOST:PORT" or "[HOST]:PORT" of `length` bytes into `listener`.
bool parse_inet(const char* address, std::size_t length, Listener& listener) {
    const bool v6 = listener.family == AF_INET6;
    const char* colon = nullptr;
    for (std::size_t i = length; i > 0; --i) {
        if (address[i - 1] == ':') {
            colon = address + i - 1;
            break;
        }
    }
    if (colon == nullptr) return false;
    const char* host = address;
    const char* host_end = colon;
    if (v6) {
        if (host_end - host < 2 || host[0] != '[' || host_end[-1] != ']') return false;
        ++host;
        --host_end;
    }
    char host_text[INET6_ADDRSTRLEN] = {};
    const auto host_length = static_cast<std::size_t>(host_end - host);
    if (host_length == 0 || host_length >= sizeof host_text) return false;
    std::memcpy(host_text, host, host_length);
    if (::inet_pton(listener.family, host_text, listener.host) != 1) return false;
    unsigned long port = 0;
    const char* port_text = colon + 1;
    const char* end = address + length;
    if (port_text == end) return false;
    for (const char* c = port_text; c < end; ++c) {
        if (*c < '0' || *c > '9') return false;
        port = port * 10 + static_cast<unsigned long>(*c - '0');
        if (port > 65535) return false;
    }
    listener.port = static_cast<unsigned short>(port);
    return true;
}

bool is_wildcard(const unsigned char* host, std::size_t size) {
    for (std::size_t i = 0; i < size; ++i) {
        if (host[i] != 0) return false;
    }
    return true;
}

}  // namespace

int parse_listeners(const char* text, Listener* out, int capacity) {
    if (text == nullptr || *text == '\0') return -1;
    int count = 0;
    while (true) {
        if (count >= capacity) return -1;
        Listener listener;
        unsigned long number = 0;
        if (*text == '-' && text[1] == ',') {
            listener.fd = kNoFd;
            text += 2;
        } else if (read_number(text, ',', 1'000'000'000UL, number)) {
            listener.fd = static_cast<int>(number);
        } else {
            return -1;
        }
        if (read_word(text, "inet", ',')) {
            listener.family = AF_INET;
        } else if (read_word(text, "inet6", ',')) {
            listener.family = AF_INET6;
        } else if (read_word(text, "unix", ',')) {
            listener.family = AF_UNIX;
        } else {
            return -1;
        }
        if (read_word(text, "stream", ',')) {
            listener.type = SOCK_STREAM;
        } else if (read_word(text, "dgram", ',')) {
            listener.type = SOCK_DGRAM;
        } else {
            return -1;
        }
        if (!read_number(text, ',', 4096, number)) return -1;
        const std::size_t length = number;
        if (std::strlen(text) < length) return -1;  // stops at the NUL: no reading past the end
        if (listener.family == AF_UNIX) {
            if (length == 0 || length >= sizeof listener.path) return -1;
            std::memcpy(listener.path, text, length);
        } else if (!parse_inet(text, length, listener)) {
            return -1;
        }
        text += length;
        out[count++] = listener;
        if (*text == '\0') return count;
        if (*text != ';') return -1;
        ++text;
    }
}

int match_listener(const Listener* listeners, int count, int type, const sockaddr* address, socklen_t length) {
    if (address == nullptr || length < static_cast<socklen_t>(sizeof(sa_family_t))) return -1;
    const int family = address->sa_family;
    const unsigned char* host = nullptr;
    std::size_t host_size = 0;
    unsigned short port = 0;
    char path[sizeof(sockaddr_un::sun_path) + 1] = {};
    if (family == AF_INET && length >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(address);
        host = reinterpret_cast<const unsigned char*>(&in->sin_addr);
        host_size = 4;
        port = ntohs(in->sin_port);
    } else if (family == AF_INET6 && length >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address);
        host = reinterpret_cast<const unsigned char*>(&in6->sin6_addr);
        host_size = 16;
        port = ntohs(in6->sin6_port);
    } else if (family == AF_UNIX && length > static_cast<socklen_t>(offsetof(sockaddr_un, sun_path))) {
        const auto* un = reinterpret_cast<const sockaddr_un*>(address);
        std::size_t size = static_cast<std::size_t>(length) - offsetof(sockaddr_un, sun_path);
        if (size > sizeof un->sun_path) size = sizeof un->sun_path;
        if (un->sun_path[0] == '\0') return -1;  // abstract names are never preforkctl's
        std::memcpy(path, un->sun_path, size);
    } else {
        return -1;
    }
    if (host != nullptr && port == 0) return -1;  // an ephemeral port is nobody's listener

    int wildcard_match = -1;
    for (int i = 0; i < count; ++i) {
        const Listener& listener = listeners[i];
        if (listener.family != family || listener.type != type) continue;
        if (family == AF_UNIX) {
            if (std::strcmp(listener.path, path) == 0) return i;
            continue;
        }
        if (listener.port != port) continue;
        if (std::memcmp(listener.host, host, host_size) == 0) return i;
        if (wildcard_match < 0 && (is_wildcard(listener.host, host_size) || is_wildcard(host, host_size))) {
            wildcard_match = i;
        }
    }
    return wildcard_match;
}

}  // namespace preforkctl::preload
