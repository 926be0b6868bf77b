#!/usr/bin/env node
'use strict';
// The `atr-server` command; the code is in dist/cli/main.js (npm run build).
require('../dist/cli/main.js').main();
