#include "plan/cpus.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <charconv>
#include <map>
#include <set>

namespace preforkctl::plan {

namespace {

constexpr int kMaxCpu = 16384;

std::string_view trim(std::string_view text) {
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
    return text;
}

bool parse_cpu(std::string_view text, int& cpu) {
    auto [rest, ec] = std::from_chars(text.data(), text.data() + text.size(), cpu);
    return ec == std::errc{} && rest == text.data() + text.size() && !text.empty() && cpu >= 0 && cpu < kMaxCpu;
}

}  // namespace

Result<CpuList> parse_cpu_list(std::string_view text) {
    const std::string_view list = trim(text);
    auto bad = [&](const char* why) { return Error{"invalid CPU list '" + std::string(list) + "': " + why}; };
    std::set<int> cpus;
    if (list.empty()) return CpuList{};
    std::size_t start = 0;
    for (;;) {
        const std::size_t comma = list.find(',', start);
        const std::string_view item = trim(list.substr(start, comma == std::string_view::npos ? comma : comma - start));
        if (item.empty()) return bad("empty item");
        const std::size_t dash = item.find('-');
        int first = 0;
        int last = 0;
        if (dash == std::string_view::npos) {
            if (!parse_cpu(item, first)) return bad("not a CPU number");
            last = first;
        } else {
            if (!parse_cpu(item.substr(0, dash), first) || !parse_cpu(item.substr(dash + 1), last)) {
                return bad("not a CPU range");
            }
            if (last < first) return bad("range end before start");
        }
        for (int cpu = first; cpu <= last; ++cpu) cpus.insert(cpu);
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }
    return CpuList(cpus.begin(), cpus.end());
}

std::string format_cpu_list(const CpuList& cpus) {
    CpuList sorted = cpus;
    std::sort(sorted.begin(), sorted.end());
    sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
    std::string out;
    for (std::size_t i = 0; i < sorted.size();) {
        std::size_t j = i;
        while (j + 1 < sorted.size() && sorted[j + 1] == sorted[j] + 1) ++j;
        // Appended piece by piece: GCC 12 at -O3 takes "," + std::to_string(n), which inserts at the front of
        // the temporary, for an overlapping memcpy (a false -Wrestrict, GCC bug 105651).
        if (!out.empty()) out += ',';
        out += std::to_string(sorted[i]);
        if (j > i) {
            out += '-';
            out += std::to_string(sorted[j]);
        }
        i = j + 1;
    }
    return out;
}

CpuList intersect(const CpuList& a, const CpuList& b) {
    CpuList out;
    std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
    return out;
}

std::vector<int> spread_order(const CpuList& cpus, const std::vector<CpuTopology>& topology) {
    // Group the CPUs by physical core; a CPU without topology is a core of its own.
    std::map<std::pair<int, int>, std::vector<int>> by_core;
    std::map<int, std::pair<int, int>> core_of;
    for (const CpuTopology& t : topology) core_of[t.cpu] = {t.package, t.core};
    std::vector<std::vector<int>> cores;
    std::map<std::pair<int, int>, std::size_t> index_of_core;
    for (int cpu : cpus) {  // ascending, so cores come in order of their lowest CPU
        auto it = core_of.find(cpu);
        if (it == core_of.end()) {
            cores.push_back({cpu});
            continue;
        }
        auto [slot, inserted] = index_of_core.try_emplace(it->second, cores.size());
        if (inserted) cores.emplace_back();
        cores[slot->second].push_back(cpu);
    }
    std::vector<int> order;
    for (std::size_t round = 0; order.size() < cpus.size(); ++round) {
        for (const auto& siblings : cores) {
            if (round < siblings.size()) order.push_back(siblings[round]);
        }
    }
    return order;
}

Result<CpuBudget> decide_cpu_budget(const CpuFacts& facts, const std::optional<CpuList>& restrict_to) {
    CpuList allowed = facts.affinity;
    std::string source = "sched_getaffinity (" + format_cpu_list(facts.affinity) + ")";
    if (facts.cgroup_cpuset && !facts.cgroup_cpuset->empty()) {
        const CpuList narrowed = intersect(allowed, *facts.cgroup_cpuset);
        if (narrowed != allowed) {
            source = "cgroup cpuset " + facts.cpuset_where + " (" + format_cpu_list(*facts.cgroup_cpuset) + ")";
        }
        allowed = narrowed;
    }
    if (allowed.empty()) {
        return Error{"no CPU is available to this process"};
    }
    if (restrict_to) {
        for (int cpu : *restrict_to) {
            if (!std::binary_search(allowed.begin(), allowed.end(), cpu)) {
                return Error{"CPU " + std::to_string(cpu) + " is not available to this process (allowed: " +
                             format_cpu_list(allowed) + ")"};
            }
        }
        allowed = *restrict_to;
        source = "--cpus " + format_cpu_list(allowed);
    }
    CpuBudget budget;
    budget.auto_workers = static_cast<int>(allowed.size());
    if (facts.quota && facts.quota->quota_us > 0 && facts.quota->period_us > 0) {
        const std::int64_t limit = (facts.quota->quota_us + facts.quota->period_us - 1) / facts.quota->period_us;
        if (limit < budget.auto_workers) {
            budget.auto_workers = static_cast<int>(std::max<std::int64_t>(1, limit));
            const double cpus = static_cast<double>(facts.quota->quota_us) / static_cast<double>(facts.quota->period_us);
            char amount[32];
            std::snprintf(amount, sizeof amount, "%.2f", cpus);
            source = facts.quota->where + " (" + std::to_string(facts.quota->quota_us) + "/" +
                     std::to_string(facts.quota->period_us) + " = " + amount + " CPUs)";
        }
    }
    budget.cpus = spread_order(allowed, facts.topology);
    budget.source = source;
    if (facts.cgroup_unknown) budget.source += "; cgroup limits unknown: /proc/self/cgroup is unreadable";
    return budget;
}

std::vector<int> map_slots_to_cpus(const CpuBudget& budget, int workers) {
    std::vector<int> map;
    if (budget.cpus.empty()) return map;
    for (int slot = 0; slot < workers; ++slot) {
        map.push_back(budget.cpus[static_cast<std::size_t>(slot) % budget.cpus.size()]);
    }
    return map;
}

}  // namespace preforkctl::plan
