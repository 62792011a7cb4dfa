import { type CgroupLayout, planCgroups } from "./cgroups.ts";
import { assertEquals, assertStringIncludes } from "../../tests/helpers/assert.ts";

const limits = { memoryBytes: 1 << 26, cpus: 0.5, pids: 64 };

Deno.test("cgroups: hybrid host uses v1 controllers nested under our own cgroup", () => {
  const layout: CgroupLayout = {
    v1: {
      memory: "/sys/fs/cgroup/memory",
      pids: "/sys/fs/cgroup/pids",
      cpu: "/sys/fs/cgroup/cpu",
      devices: "/sys/fs/cgroup/devices",
    },
    v2: { mount: "/sys/fs/cgroup/unified", controllers: [] },
    self: { memory: "/svc/a", pids: "/", cpu: "/" },
  };
  const plan = planCgroups("abc", limits, layout);
  assertEquals(plan.dirs, [
    "/sys/fs/cgroup/memory/svc/a/tau-abc",
    "/sys/fs/cgroup/pids/tau-abc",
    "/sys/fs/cgroup/cpu/tau-abc",
  ]);
  assertEquals(plan.devices, "/sys/fs/cgroup/devices/tau-devices", "one v1 devices cgroup for every container");
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
  assertEquals(plan.devices, "/sys/fs/cgroup/tau/abc", "the BPF device program goes on the v2 cgroup");
  assertEquals(plan.settings, [
    ["/sys/fs/cgroup/tau/abc/memory.max", "67108864"],
    ["/sys/fs/cgroup/tau/abc/memory.swap.max", "0"],
    ["/sys/fs/cgroup/tau/abc/pids.max", "64"],
    ["/sys/fs/cgroup/tau/abc/cpu.max", "50000 100000"],
  ]);
});

Deno.test("cgroups: only controllers with a limit get a cgroup; the device allow-list always applies", () => {
  // Clean-up of stragglers goes by network namespace, accounting by /proc (usage.ts): neither needs a cgroup.
  const layout: CgroupLayout = { v1: { pids: "/p", memory: "/m", cpu: "/c", devices: "/d" }, self: {} };
  assertEquals(planCgroups("x", {}, layout), { dirs: [], settings: [], devices: "/d/tau-devices" });
  assertEquals(planCgroups("x", { pids: 8 }, layout), {
    dirs: ["/p/tau-x"],
    settings: [["/p/tau-x/pids.max", "8"]],
    devices: "/d/tau-devices",
  });
  const v2: CgroupLayout = { v1: {}, v2: { mount: "/u", controllers: ["memory", "pids"] }, self: {} };
  assertEquals(planCgroups("x", {}, v2), { dirs: ["/u/tau/x"], settings: [], devices: "/u/tau/x" });
});

Deno.test("cgroups: hybrid host without the v1 devices controller puts a v2 cgroup in for the device program", () => {
  const layout: CgroupLayout = { v1: { pids: "/p" }, v2: { mount: "/u", controllers: [] }, self: {} };
  assertEquals(planCgroups("x", { pids: 8 }, layout), {
    dirs: ["/p/tau-x", "/u/tau/x"],
    settings: [["/p/tau-x/pids.max", "8"]],
    devices: "/u/tau/x",
  });
});

Deno.test("cgroups: a host with no device cgroup at all is refused with the reason", () => {
  const layout: CgroupLayout = { v1: { pids: "/p", memory: "/m" }, self: {} };
  let message = "";
  try {
    planCgroups("x", {}, layout);
  } catch (err) {
    message = (err as Error).message;
  }
  assertStringIncludes(message, "cannot run containers: this host has no device cgroup");
});
