// Layers point inward: provider/ -> the host driver port (src/host/driver.ts)
// -> src/host -> src/uml, with src/*.ts (errors, specs, process, deadlines)
// beneath them all. src/client (the HostDriver over HTTP) takes only types
// from src/host; src/agent serves a driver and may import src/host. A wrong import fails `npm run lint`; test/unit/layers.test.ts
// lints fixtures against these rules.
const noPulumiInSrc = {
  group: ["@pulumi/*"],
  message: "src/ knows nothing of Pulumi: the resources live in provider/.",
};
const noProviderInSrc = {
  group: ["**/provider", "**/provider/*"],
  message: "src/ never imports provider/: the arrows point inward.",
};

export default [
  {
    files: ["src/**/*.ts"],
    rules: { "no-restricted-imports": ["error", { patterns: [noPulumiInSrc, noProviderInSrc] }] },
  },
  {
    files: ["src/uml/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            noPulumiInSrc,
            noProviderInSrc,
            {
              group: ["../host", "../host/*", "**/src/host/*"],
              message: "src/uml speaks to UML and imports nothing of src/host (layers point inward).",
            },
          ],
        },
      ],
    },
  },
  {
    files: ["src/client/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            noPulumiInSrc,
            noProviderInSrc,
            {
              group: ["../host", "../host/*", "**/src/host/*"],
              allowTypeImports: true,
              message:
                "src/client speaks HTTP to an agent and takes only types from src/host (the runtime runs on the far side).",
            },
          ],
        },
      ],
    },
  },
  {
    files: ["provider/**/*.ts"],
    // The one place that picks a driver (and writes an SSH key file for it).
    ignores: ["provider/driver-factory.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              group: ["../src/host/*", "!../src/host/driver"],
              message:
                "the provider reaches a host only through the HostDriver port (src/host/driver.ts); provider/driver-factory.ts picks the driver.",
            },
            {
              group: ["node:fs", "node:child_process", "fs", "child_process"],
              message: "the provider does no host IO: that is the driver's (src/host).",
            },
          ],
        },
      ],
    },
  },
];
