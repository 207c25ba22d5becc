import fs from 'fs'
import path from 'path'
import { pathToFileURL } from 'url'
const pkg = process.argv[2]
const imp = p => import(pathToFileURL(path.join(pkg, p)).href)
const tests = (await imp('tests/index.mjs')).default
tests.push((await imp('tests/surrogate-control.mjs')).default)
const display = await imp('lib/display.mjs')
const index = (await imp('results/index.mjs')).default
const files = [['concierge response-cache', process.argv[3]], ...index.map(i => [i.name, path.join(pkg, 'results', i.file)])]
const all = []
tests.forEach(s => s.tests.forEach(t => all.push(t)))
const pass = ['✅', 'Y']
for (const [name, file] of files) {
  const res = JSON.parse(fs.readFileSync(file, 'utf8'))
  const c = { required: [0, 0], optimal: [0, 0], check: [0, 0] }
  let total = 0
  for (const t of all) {
    const kind = t.kind || 'required'
    const r = display.determineTestResult(tests, t.id, res, true)
    c[kind][1]++
    if (pass.includes(r[2])) { c[kind][0]++; total++ }
  }
  console.log(`${name.padEnd(26)} ${String(total).padStart(3)}/${all.length}  required ${c.required[0]}/${c.required[1]}  optimal ${c.optimal[0]}/${c.optimal[1]}  check ${c.check[0]}/${c.check[1]}`)
}
