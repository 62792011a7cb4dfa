import { type CgroupLayout, planCgroups } from "./cgroups.ts";
import { assertEquals } from "../../tests/helpers/assert.ts";

const limits = { memoryBytes: 1 << 26, cpus: 0.5, pids: 64 };

Deno.test("cgroups: hybrid host uses v1 controllers nested under our own cgroup", () => {
  const layout: CgroupLayout = {
    v1: { memory: "/sys/fs/cgroup/memory", pids: "/sys/fs/cgroup/pids", cpu: "/sys/fs/cgroup/cpu" },
    v2: { mount: "/sys/fs/cgroup/unified", controllers: [] },
    self: { memory: "/svc/a", pids: "/", cpu: "/" },
  };
  const plan = planCgroups("abc", limits, layout);
  assertEquals(plan.dirs, [
    "/sys/fs/cgroup/memory/svc/a/tau-abc",
    "/sys/fs/cgroup/pids/tau-abc",
    "/sys/fs/cgroup/cpu/tau-abc",
  ]);
  assertEquals(plan.settings, [
    ["/sys/fs/cgroup/memory/svc/a/tau-abc/memory.limit_in_bytes", "67108864"],
    ["/sys/fs/cgroup/pids/tau-abc/pids.max", "64"],
    ["/sys/fs/cgroup/cpu/tau-abc/cpu.cfs_period_us", "100000"],
    ["/sys/fs/cgroup/cpu/tau-abc/cpu.cfs_quota_us", "50000"],
  ]);
});

Deno.test("cgroups: pure v2 host uses one directory under <mount>/tau", () => {
  const layout: CgroupLayout = {
    v1: {},
    v2: { mount: "/sys/fs/cgroup", controllers: ["cpu", "memory", "pids", "io"] },
    self: { "": "/user.slice" },
  };
  const plan = planCgroups("abc", limits, layout);
  assertEquals(plan.dirs, ["/sys/fs/cgroup/tau/abc"]);
  assertEquals(plan.settings, [
    ["/sys/fs/cgroup/tau/abc/memory.max", "67108864"],
    ["/sys/fs/cgroup/tau/abc/memory.swap.max", "0"],
    ["/sys/fs/cgroup/tau/abc/pids.max", "64"],
    ["/sys/fs/cgroup/tau/abc/cpu.max", "50000 100000"],
  ]);
});

Deno.test("cgroups: no limits still creates cgroups (exec joins them, clean-up finds stragglers)", () => {
  const layout: CgroupLayout = { v1: { pids: "/p" }, self: {} };
  assertEquals(planCgroups("x", {}, layout), { dirs: ["/p/tau-x"], settings: [] });
});
