import type * as pulumi from "@pulumi/pulumi";
import type { Kind } from "./impl";

type Impl = typeof import("./impl");

/**
 * The dynamic provider object Pulumi serializes into the state file. It must
 * stay small and data-only: capturing a module copies it by value into state,
 * and Maps, #private fields and native functions break when revived
 * (shared/PULUMI.md). So each method only names its resource kind and loads
 * the implementation by package name in the provider process; an upgraded
 * umlfleet then serves old state without a diff. Per-resource data (the state
 * folder) travels as inputs, never as captures.
 */
/* eslint-disable @typescript-eslint/no-unsafe-argument -- Pulumi's ResourceProvider types its properties as any. */
export function makeProvider(kind: Kind): pulumi.dynamic.ResourceProvider {
  // One object per kind: @pulumi/pulumi caches a provider's serialization by object
  // identity (about 20 ms of the program's CPU each, measured), so 64 resources of
  // two kinds serialize twice, not 64 times.
  let provider = providers.get(kind);
  if (!provider) providers.set(kind, (provider = newProvider(kind)));
  return provider;
}

const providers = new Map<Kind, pulumi.dynamic.ResourceProvider>();

function newProvider(kind: Kind): pulumi.dynamic.ResourceProvider {
  return {
    check: (olds, news) => (require("umlfleet/dist/provider/impl") as Impl).check(kind, olds, news),
    diff: (id, olds, news) => (require("umlfleet/dist/provider/impl") as Impl).diff(kind, id, olds, news),
    create: (inputs) => (require("umlfleet/dist/provider/impl") as Impl).create(kind, inputs),
    read: (id, props) => (require("umlfleet/dist/provider/impl") as Impl).read(kind, id, props),
    update: (id, olds, news) => (require("umlfleet/dist/provider/impl") as Impl).update(kind, id, olds, news),
    delete: (id, props) => (require("umlfleet/dist/provider/impl") as Impl).remove(kind, id, props),
  };
}

type ChecksImpl = typeof import("./checks-impl");

/** LabChecks' provider: as makeProvider, loading provider/checks-impl by package name. */
export function makeChecksProvider(): pulumi.dynamic.ResourceProvider {
  return {
    check: async (olds, news) =>
      (require("umlfleet/dist/provider/checks-impl") as ChecksImpl).check(olds, news),
    diff: async (id, olds, news) =>
      (require("umlfleet/dist/provider/checks-impl") as ChecksImpl).diff(id, olds, news),
    create: (inputs) => (require("umlfleet/dist/provider/checks-impl") as ChecksImpl).create(inputs),
    read: (id, props) => (require("umlfleet/dist/provider/checks-impl") as ChecksImpl).read(id, props),
    update: (id, olds, news) =>
      (require("umlfleet/dist/provider/checks-impl") as ChecksImpl).update(id, olds, news),
    delete: () => (require("umlfleet/dist/provider/checks-impl") as ChecksImpl).remove(),
  };
}
