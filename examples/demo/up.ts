/**
 * `npm run demo` (up), `npm run demo -- destroy|preview|refresh`: the demo lab
 * on this machine, through the real pulumi CLI, state in .pulumi-state/.
 */
import { join } from "node:path";
import { localStack } from "../../automation/local-stack";
import { lab } from "./lab";

async function main(): Promise<void> {
  const action = process.argv[2] ?? "up";
  const root = join(__dirname, "..", "..", "..");
  const stack = await localStack({
    projectName: "umlfleet-lab",
    stackName: "dev",
    program: async () => lab(),
    backendDir: join(root, ".pulumi-state"),
  });
  const onOutput = (s: string) => process.stdout.write(s);
  switch (action) {
    case "up": {
      // Pulumi's default parallelism (4 x CPUs) would boot a larger fleet in waves.
      const r = await stack.up({ onOutput, parallel: 64 });
      console.log(JSON.stringify(r.outputs.instances?.value, null, 2));
      break;
    }
    case "preview":
      await stack.preview({ onOutput });
      break;
    case "refresh":
      await stack.refresh({ onOutput });
      break;
    case "destroy":
      await stack.destroy({ onOutput });
      break;
    default:
      throw new Error(`unknown action ${JSON.stringify(action)}: use up, preview, refresh or destroy`);
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
