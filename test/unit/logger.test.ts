// Card numbers never reach the log: every 13–19 digit run that passes Luhn is masked wherever it
// sits in a record (message, nested field, error message and stack, child bindings), and the
// text around it is left as it was.
import assert from 'node:assert/strict';
import { createLogger, maskPan } from '../../src/logger.ts';

function capture(level = 'info') {
  const lines: string[] = [];
  const logger = createLogger(level, { write: (line: string) => void lines.push(line) });
  return { logger, lines, last: () => JSON.parse(lines.at(-1)!) as Record<string, unknown> };
}

describe('logger: card numbers are masked', () => {
  const cases: Array<[string, string, string]> = [
    ['plain', 'card 4242424242424242 declined', 'card 424242******4242 declined'],
    ['spaces, text right after', 'pan=4242 4242 4242 4242, retry', 'pan=424242******4242, retry'],
    ['dashes at the end', 'number: 5555-5555-5555-4444', 'number: 555555******4444'],
    ['Amex 15 digits in 4-6-5', '(3782 822463 10005)', '(378282******0005)'],
    ['19 digits', 'x 6271800000000000003 y', 'x 627180******0003 y'],
    ['glued to a word', 'ref:4000000000000002.', 'ref:400000******0002.'],
    ['after other digits in the run', 'order 12 4242 4242 4242 4242 ok', 'order 12 424242******4242 ok'],
    ['two numbers', '4242424242424242/5555555555554444', '424242******4242/555555******4444'],
  ];
  for (const [name, input, expected] of cases) {
    it(`maskPan: ${name}`, () => assert.equal(maskPan(input), expected));
  }

  const untouched: Array<[string, string]> = [
    ['a Luhn-failing 16-digit run', 'id 4242424242424241 kept'],
    ['12 digits', 'phone 424242424242'],
    ['a date and a time', '2031-02-10 09:15:00'],
    ['more than 19 digits', 'n 42424242424242424242424'],
  ];
  for (const [name, input] of untouched) {
    it(`maskPan leaves ${name} alone`, () => assert.equal(maskPan(input), input));
  }

  it('masks the message, format arguments and the text around them stays intact', () => {
    const { logger, last } = capture();
    logger.info('paid with 4242 4242 4242 4242 today');
    assert.equal(last().msg, 'paid with 424242******4242 today');
    logger.info('card %s used', '5555555555554444');
    assert.equal(last().msg, 'card 555555******4444 used');
  });

  it('masks nested fields, arrays and numbers, and child bindings', () => {
    const { logger, last, lines } = capture();
    logger.child({ session: { note: 'typed 4000-0000-0000-0002 in the subject' } }).warn(
      { outbox: { lastError: 'relay said: bad 4242424242424242!' }, list: ['x 5555 5555 5555 4444 y'], pan: 4242424242424242, amountMinor: 12990 },
      'attempt failed',
    );
    const rec = last();
    assert.deepEqual(rec['session'], { note: 'typed 400000******0002 in the subject' });
    assert.deepEqual(rec['outbox'], { lastError: 'relay said: bad 424242******4242!' });
    assert.deepEqual(rec['list'], ['x 555555******4444 y']);
    assert.equal(rec['pan'], '424242******4242');
    assert.equal(rec['amountMinor'], 12990);
    assert.equal(typeof rec['time'], 'number');
    assert.doesNotMatch(lines.join(''), /4242424242424242|5555 5555 5555 4444|4000-0000-0000-0002/);
  });

  it('masks an error’s message and stack, logged alone or under err', () => {
    const { logger, lines } = capture();
    const err = new Error('card 4242424242424242 rejected by the acquirer');
    logger.error(err);
    logger.error({ err, context: { cause: new Error('nested 5555555555554444') } }, 'payment failed');
    assert.equal(lines.length, 2);
    const first = JSON.parse(lines[0]!) as { msg: string; err: { message: string; stack: string } };
    assert.equal(first.msg, 'card 424242******4242 rejected by the acquirer');
    assert.equal(first.err.message, 'card 424242******4242 rejected by the acquirer');
    assert.match(first.err.stack, /^Error: card 424242\*{6}4242 rejected by the acquirer\n\s+at /);
    assert.doesNotMatch(lines.join(''), /4242424242424242|5555555555554444/);
  });
});
