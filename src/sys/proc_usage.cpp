#include "sys/proc_usage.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <memory>
#include <set>

#include "sys/fd.hpp"

namespace preforkctl::sys {

namespace {

template <class Number>
bool parse_number(std::string_view text, Number& out) {
    const char* end = text.data() + text.size();
    const auto [stop, error] = std::from_chars(text.data(), end, out);
    return error == std::errc{} && stop == end;
}

// The whitespace-separated fields of `text`, at most `limit` of them.
std::vector<std::string_view> split_fields(std::string_view text, std::size_t limit) {
    std::vector<std::string_view> fields;
    std::size_t at = 0;
    while (fields.size() < limit) {
        at = text.find_first_not_of(" \n", at);
        if (at == std::string_view::npos) break;
        const std::size_t stop = text.find_first_of(" \n", at);
        fields.push_back(text.substr(at, stop == std::string_view::npos ? std::string_view::npos : stop - at));
        if (stop == std::string_view::npos) break;
        at = stop;
    }
    return fields;
}

bool alive(const ProcStat& process) {
    // Z: exited, not yet reaped; X: being torn down. Their time is about to move to the parent's cutime.
    return process.state != 'Z' && process.state != 'X';
}

// The whole of a small file (a stat line is well under a page); nullopt when it cannot be read, which for
// /proc/<pid>/stat means the process has gone.
std::optional<std::string> read_small_file(const std::string& path) {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return std::nullopt;
    std::string text;
    std::array<char, 1024> buffer{};
    for (;;) {
        const ssize_t got = ::read(fd.get(), buffer.data(), buffer.size());
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return std::nullopt;
        if (got == 0) return text;
        text.append(buffer.data(), static_cast<std::size_t>(got));
    }
}

}  // namespace

std::optional<ProcStat> parse_proc_stat(std::string_view line) {
    const std::size_t open = line.find('(');
    const std::size_t close = line.rfind(')');
    if (open == std::string_view::npos || close == std::string_view::npos || close < open) return std::nullopt;

    ProcStat stat;
    const std::string_view pid_text = line.substr(0, open);
    const std::size_t pid_end = pid_text.find_last_not_of(' ');
    if (pid_end == std::string_view::npos || !parse_number(pid_text.substr(0, pid_end + 1), stat.pid)) {
        return std::nullopt;
    }

    // Fields from 3 (state) on; index i holds proc(5) field i + 3.
    constexpr std::size_t kState = 0, kPpid = 1, kUtime = 11, kStime = 12, kCutime = 13, kCstime = 14, kThreads = 17,
                          kRss = 21;
    const auto fields = split_fields(line.substr(close + 1), kRss + 1);
    if (fields.size() <= kRss || fields[kState].size() != 1) return std::nullopt;
    stat.state = fields[kState][0];
    // rss is a signed long in the kernel; a negative count would be a kernel accounting glitch, read as 0.
    std::int64_t rss_pages = 0;
    std::uint64_t cstime = 0;
    if (!parse_number(fields[kPpid], stat.ppid) || !parse_number(fields[kUtime], stat.utime_ticks) ||
        !parse_number(fields[kStime], stat.stime_ticks) || !parse_number(fields[kCutime], stat.reaped_children_ticks) ||
        !parse_number(fields[kCstime], cstime) || !parse_number(fields[kRss], rss_pages)) {
        return std::nullopt;
    }
    stat.reaped_children_ticks += cstime;
    if (!parse_number(fields[kThreads], stat.threads) || stat.threads < 1) stat.threads = 1;
    stat.rss_pages = rss_pages > 0 ? static_cast<std::uint64_t>(rss_pages) : 0;
    return stat;
}

std::map<int, TreeUsage> sum_tree_usage(const std::vector<ProcStat>& processes, const std::vector<int>& roots,
                                        std::uint64_t page_size, std::uint64_t ticks_per_second) {
    std::map<int, const ProcStat*> by_pid;
    std::multimap<int, const ProcStat*> by_parent;
    for (const ProcStat& process : processes) {
        if (!alive(process)) continue;
        by_pid.emplace(process.pid, &process);
        by_parent.emplace(process.ppid, &process);
    }

    std::map<int, TreeUsage> usage;
    for (const int root : roots) {
        const auto found = by_pid.find(root);
        if (found == by_pid.end()) continue;
        TreeUsage sum;
        std::uint64_t ticks = 0;
        // `seen` guards against a ppid cycle, which a fake tree (or pid reuse during the pass) could show.
        std::set<int> seen{root};
        std::vector<const ProcStat*> pending{found->second};
        while (!pending.empty()) {
            const ProcStat* process = pending.back();
            pending.pop_back();
            sum.rss_bytes += process->rss_pages * page_size;
            // With the CPU of the children each one has reaped, every process that ever ran in the tree is
            // counted once (a live one by itself, a dead one by its reaper), so the sum never goes down when
            // a helper process exits.
            ticks += process->utime_ticks + process->stime_ticks + process->reaped_children_ticks;
            ++sum.processes;
            const auto [first, last] = by_parent.equal_range(process->pid);
            for (auto child = first; child != last; ++child) {
                if (seen.insert(child->second->pid).second) pending.push_back(child->second);
            }
        }
        sum.cpu_seconds =
            ticks_per_second > 0 ? static_cast<double>(ticks) / static_cast<double>(ticks_per_second) : 0.0;
        usage.emplace(root, sum);
    }
    return usage;
}

namespace {

std::vector<int> numbers_in(std::string_view text) {
    std::vector<int> numbers;
    for (const std::string_view field : split_fields(text, text.size())) {
        int number = 0;
        if (parse_number(field, number)) numbers.push_back(number);
    }
    return numbers;
}

// The children of `pid` from /proc/PID/task/TID/children (every thread's: a child's parent is the thread
// that forked it); nullopt when the kernel has no such file (CONFIG_PROC_CHILDREN off) or the process is gone.
std::optional<std::vector<int>> children_of(const std::string& proc_root, int pid, int threads) {
    const std::string tasks = proc_root + "/" + std::to_string(pid) + "/task";
    if (threads == 1) {  // the usual worker: one file, no directory to list
        const auto text = read_small_file(tasks + "/" + std::to_string(pid) + "/children");
        if (!text) return std::nullopt;
        return numbers_in(*text);
    }
    const std::unique_ptr<DIR, int (*)(DIR*)> directory(::opendir(tasks.c_str()), ::closedir);
    if (!directory) return std::nullopt;
    std::vector<int> children;
    bool any = false;
    while (const dirent* entry = ::readdir(directory.get())) {
        if (entry->d_name[0] == '.') continue;
        const auto text = read_small_file(tasks + "/" + entry->d_name + "/children");
        if (!text) continue;
        any = true;
        for (const int child : numbers_in(*text)) children.push_back(child);
    }
    if (!any) return std::nullopt;
    return children;
}

// Every process below `roots`, found by following the children files: a few files per worker process,
// however many processes the host runs. nullopt when the kernel offers no children files.
std::optional<std::vector<ProcStat>> walk_trees(const std::vector<int>& roots, const std::string& proc_root) {
    std::vector<ProcStat> processes;
    std::set<int> seen;
    std::vector<int> pending(roots.begin(), roots.end());
    while (!pending.empty()) {
        const int pid = pending.back();
        pending.pop_back();
        if (!seen.insert(pid).second) continue;
        const auto text = read_small_file(proc_root + "/" + std::to_string(pid) + "/stat");
        if (!text) continue;  // gone meanwhile
        const auto stat = parse_proc_stat(*text);
        if (!stat) continue;
        processes.push_back(*stat);
        const auto children = children_of(proc_root, pid, stat->threads);
        if (!children) {
            if (alive(*stat)) return std::nullopt;  // a live process without children files: none to follow
            continue;
        }
        pending.insert(pending.end(), children->begin(), children->end());
    }
    return processes;
}

// Every process of the host, one /proc/PID/stat each.
std::vector<ProcStat> scan_all(const std::string& proc_root) {
    std::vector<ProcStat> processes;
    const std::unique_ptr<DIR, int (*)(DIR*)> directory(::opendir(proc_root.c_str()), ::closedir);
    if (!directory) return processes;
    while (const dirent* entry = ::readdir(directory.get())) {
        int pid = 0;
        if (!parse_number(std::string_view(entry->d_name), pid)) continue;
        const auto text = read_small_file(proc_root + "/" + entry->d_name + "/stat");
        if (!text) continue;
        if (auto stat = parse_proc_stat(*text)) processes.push_back(*stat);
    }
    return processes;
}

}  // namespace

std::map<int, TreeUsage> read_tree_usage(const std::vector<int>& roots, const std::string& proc_root) {
    if (roots.empty()) return {};
    auto processes = walk_trees(roots, proc_root);
    if (!processes) processes = scan_all(proc_root);
    const long page_size = ::sysconf(_SC_PAGESIZE);
    const long ticks_per_second = ::sysconf(_SC_CLK_TCK);
    return sum_tree_usage(*processes, roots, page_size > 0 ? static_cast<std::uint64_t>(page_size) : 4096,
                          ticks_per_second > 0 ? static_cast<std::uint64_t>(ticks_per_second) : 100);
}

}  // namespace preforkctl::sys
