#!/usr/bin/env node
/*
 * Builds the two forms of the package from its one source, src/wirehub.js,
 * with node alone (no bundler):
 *
 *   dist/wirehub.mjs  ES module: the source as it is
 *   dist/wirehub.cjs  CommonJS (module.exports = Wirehub), which also runs
 *                     as a classic <script> (window.Wirehub)
 *
 *   node build.mjs           write dist/
 *   node build.mjs --check   exit 1 when dist/ is not what the source
 *                            gives (dist/ is committed: the dashboard and
 *                            the Docker image serve it without node)
 */

import { readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const MARKER = '/* exports: build.mjs replaces everything from this line on */';
const pkg = JSON.parse(readFileSync(join(here, 'package.json'), 'utf8'));
const banner = '/* wirehub ' + pkg.version + ': generated from src/wirehub.js'
               + ' by build.mjs, do not edit */\n';

function outputs() {
    const src = readFileSync(join(here, 'src', 'wirehub.js'), 'utf8');
    const at = src.indexOf(MARKER);

    if (at === -1) {
        throw new Error('src/wirehub.js: the exports marker is missing');
    }

    /* a universal wrapper: CommonJS when there is a module, else a global */
    const body = src.slice(0, at).trimEnd().replace(/^(?=.)/gm, '    ');
    const cjs = banner
        + '(function (root, factory) {\n'
        + '    if (typeof module === \'object\' && module.exports) {\n'
        + '        module.exports = factory();\n'
        + '    } else {\n'
        + '        root.Wirehub = factory();\n'
        + '    }\n'
        + '}(typeof self !== \'undefined\' ? self : this, function () {\n'
        + '    \'use strict\';\n\n'
        + body + '\n\n'
        + '    Wirehub.default = Wirehub;\n\n'
        + '    return Wirehub;\n'
        + '}));\n';

    return {
        'wirehub.mjs': banner + src,
        'wirehub.cjs': cjs
    };
}

function main() {
    const check = process.argv.includes('--check');
    const dist = join(here, 'dist');
    let stale = [];

    mkdirSync(dist, { recursive: true });

    for (const [name, text] of Object.entries(outputs())) {
        const path = join(dist, name);

        if (check) {
            if (!existsSync(path) || readFileSync(path, 'utf8') !== text) {
                stale.push('dist/' + name);
            }
        } else {
            writeFileSync(path, text);
        }
    }

    if (stale.length > 0) {
        console.error('out of date (run node web/build.mjs): '
                      + stale.join(' '));
        process.exit(1);
    }
}

main();
