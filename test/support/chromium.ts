/**
 * Headless Chromium for the browser tests: Debian's `chromium` package (installed by .ci/run when
 * missing) driven by playwright-core through executablePath — never Playwright's own browser download.
 * CHROMIUM_PATH overrides where it is looked for.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export function chromiumPath(): string {
  if (process.env.CHROMIUM_PATH) return process.env.CHROMIUM_PATH;
  for (const name of ['chromium', 'chromium-browser', 'google-chrome']) {
    try {
      const found = execFileSync('which', [name], { encoding: 'utf8' }).trim();
      if (found && existsSync(found)) return found;
    } catch {
      // not this one
    }
  }
  throw new Error('no Chromium found: install Debian\'s chromium package (apt-get install chromium) or set CHROMIUM_PATH');
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: chromiumPath(), args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'], headless: true });
}
