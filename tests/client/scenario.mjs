// Drives membershipd through the official Contensis Management API JavaScript client
// (`contensis-management-api`, pinned in package.json): groups, users and membership, as
// an application using the client would call them.
//
//   MEMBERSHIP_URL            the service, e.g. http://127.0.0.1:8080
//   MEMBERSHIP_CLIENT_ID      an administrator API client (client credentials grant)
//   MEMBERSHIP_CLIENT_SECRET  its secret
//   MEMBERSHIP_TRACE=1        also print every HTTP exchange to stderr on success
//
// Prints one line per step on stdout. On the first mismatch it prints what was expected
// and what came, then every HTTP exchange the client made, to stderr, and exits with 1.

import { randomUUID } from 'node:crypto';
import { UniversalClient } from 'contensis-management-api';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

class Mismatch extends Error {}

function env(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`scenario: ${name} is not set (see the top of tests/client/scenario.mjs)`);
    process.exit(2);
  }
  return value;
}

const rootUrl = env('MEMBERSHIP_URL');
const clientId = env('MEMBERSHIP_CLIENT_ID');
const clientSecret = env('MEMBERSHIP_CLIENT_SECRET');

// ---- what the client sends and gets ------------------------------------------------

/** Every exchange, in order, with secrets masked. */
const trace = [];
const realFetch = globalThis.fetch;

function masked(body) {
  if (typeof body !== 'string') return body;
  return body
    .replace(/(client_secret=)[^&]*/g, '$1***')
    .replace(/(password=)[^&]*/g, '$1***')
    .replace(/("password"\s*:\s*")[^"]*/g, '$1***');
}

function headerLines(headers) {
  const entries = headers instanceof Headers ? [...headers.entries()] : Object.entries(headers ?? {});
  return entries.map(([name, value]) =>
    name.toLowerCase() === 'authorization' ? `${name}: ${String(value).slice(0, 16)}…` : `${name}: ${value}`,
  );
}

// The client calls the global fetch (`UniversalClient` hands it over when constructed), so
// recording it here sees exactly what goes over the wire, without changing anything.
globalThis.fetch = async (input, init = {}) => {
  // The client puts identifiers into paths as they are; fetch escapes what URLs cannot
  // hold (a space becomes %20). Both are shown when they differ.
  let wire = String(input);
  try {
    wire = new URL(input).href;
  } catch {
    // left as the client wrote it
  }
  const exchange = {
    request: `${init.method ?? 'GET'} ${input}${wire === String(input) ? '' : `  (sent as ${wire})`}`,
    requestHeaders: headerLines(init.headers),
    requestBody: masked(init.body),
  };
  trace.push(exchange);
  try {
    const response = await realFetch(input, init);
    exchange.status = `${response.status} ${response.statusText}`;
    exchange.responseHeaders = headerLines(response.headers).filter((line) =>
      /^(content-type|www-authenticate|retry-after|allow):/i.test(line),
    );
    exchange.responseBody = masked(await response.clone().text());
    return response;
  } catch (error) {
    exchange.status = `network error: ${error?.cause?.message ?? error.message}`;
    throw error;
  }
};

function printTrace() {
  console.error('--- HTTP exchanges made by the client, in order ---');
  for (const [i, x] of trace.entries()) {
    console.error(`#${i + 1} ${x.request}`);
    for (const line of x.requestHeaders) console.error(`    > ${line}`);
    if (x.requestBody !== undefined) console.error(`    > body: ${x.requestBody}`);
    console.error(`    < ${x.status ?? '(no answer)'}`);
    for (const line of x.responseHeaders ?? []) console.error(`    < ${line}`);
    if (x.responseBody) console.error(`    < body: ${x.responseBody}`);
  }
}

// ---- assertions --------------------------------------------------------------------

const show = (value) => (value === undefined ? 'undefined' : JSON.stringify(value));

function check(condition, what, actual) {
  if (!condition) throw new Mismatch(`${what}; got ${show(actual)}`);
}

function equal(actual, expected, what) {
  if (show(actual) !== show(expected)) {
    throw new Mismatch(`${what}: expected ${show(expected)}, got ${show(actual)}`);
  }
}

/** Awaits a call that must fail, and returns what the client rejected with. */
async function rejection(promise, what) {
  let result;
  try {
    result = await promise;
  } catch (error) {
    return error;
  }
  throw new Mismatch(`${what} should have failed, but resolved with ${show(result)}`);
}

/** What the client rejects a non-2xx answer with: `{status, statusText, url, data}`. */
function assertFailure(failure, status, code, what) {
  check(
    failure && typeof failure === 'object' && !(failure instanceof Error),
    `${what}: the client should reject with its response context, not an exception`,
    failure instanceof Error ? `${failure.name}: ${failure.message}` : failure,
  );
  equal(failure.status, status, `${what}: status`);
  check(typeof failure.statusText === 'string' && failure.statusText.length > 0, `${what}: statusText`, failure.statusText);
  check(typeof failure.url === 'string' && failure.url.startsWith(rootUrl), `${what}: url`, failure.url);
  const body = failure.data;
  check(body && typeof body === 'object' && !(body instanceof Error), `${what}: data should be the parsed Error body`, body);
  equal(Object.keys(body).sort(), ['data', 'logId', 'message', 'type'], `${what}: Error body fields`);
  equal(body.type, 'error', `${what}: data.type`);
  equal(body.data?.code, code, `${what}: data.data.code`);
  check(GUID.test(body.logId ?? ''), `${what}: data.logId should be a GUID`, body.logId);
  check(typeof body.message === 'string' && body.message.length > 0, `${what}: data.message`, body.message);
  return body;
}

function assertUser(user, expected, what) {
  check(user && typeof user === 'object', `${what}: a user`, user);
  check(GUID.test(user.id ?? ''), `${what}: id should be a GUID`, user.id);
  equal(user.username, expected.username, `${what}: username`);
  equal(user.email, expected.email, `${what}: email`);
  equal(user.credentials?.password, undefined, `${what}: the password must never be echoed`);
}

function assertMembers(list, expected, what) {
  check(list && Array.isArray(list.items), `${what}: a paged list with items`, list);
  equal(
    list.items.map((u) => ({ id: u.id, username: u.username })),
    expected.map((u) => ({ id: u.id, username: u.username })),
    `${what}: members (id, username)`,
  );
  equal(list.totalCount, expected.length, `${what}: totalCount`);
  check(Number.isInteger(list.pageIndex) && Number.isInteger(list.pageSize), `${what}: pageIndex and pageSize`, list);
}

// ---- the scenario ------------------------------------------------------------------

const run = randomUUID().slice(0, 8);
const groupName = `Client Compat ${run}`;
const password = `Pa55-${randomUUID()}`;
const people = [
  { username: `marla.${run}`, email: `marla.${run}@example.com`, firstName: 'Marla', lastName: 'Singer' },
  { username: `bob.${run}`, email: `bob.${run}@example.com`, firstName: 'Robert', lastName: 'Paulson' },
];

let stepNumber = 0;
let current = 'setting up';
async function step(title, body) {
  stepNumber += 1;
  current = `step ${stepNumber} (${title})`;
  const detail = await body();
  console.log(`ok ${stepNumber} ${title}${detail ? `: ${detail}` : ''}`);
}

const client = UniversalClient.create({
  rootUrl,
  clientType: 'client_credentials',
  clientDetails: { clientId, clientSecret },
});
const { groups, users } = client.security;

async function scenario() {
  let group;
  const [marla, bob] = [{}, {}];

  await step('the client authenticates with client_credentials', async () => {
    const token = await client.ensureBearerToken();
    check(typeof token === 'string' && token.length > 0, 'a bearer token', token);
    check(!client.isBearerTokenExpired(), 'the token should be good for more than a minute', client.bearerTokenExpiryDate);
    return `token ends ${client.bearerTokenExpiryDate.toISOString()}`;
  });

  await step('a wrong client secret is refused', async () => {
    const wrong = UniversalClient.create({
      rootUrl,
      clientType: 'client_credentials',
      clientDetails: { clientId, clientSecret: `${clientSecret}-wrong` },
    });
    const failure = await rejection(wrong.ensureBearerToken(), 'a token for a wrong secret');
    check(
      failure instanceof Error && failure.name === 'ContensisAuthenticationError',
      'a ContensisAuthenticationError',
      `${failure?.name}: ${failure?.message}`,
    );
    equal(failure.message, 'invalid_client', 'its message (the OAuth error)');
    return `${failure.name}: ${failure.message}`;
  });

  await step('create a group', async () => {
    group = await groups.create({ name: groupName, description: 'Made by the client scenario', custom: { run } });
    check(group && GUID.test(group.id ?? ''), 'the created group with a GUID id', group);
    equal(group.name, groupName, 'group name');
    equal(group.description, 'Made by the client scenario', 'group description');
    const again = await groups.getByName(groupName);
    equal(again.id, group.id, 'getByName finds the created group');
    return `${group.name} (${group.id})`;
  });

  await step('create two users with passwords', async () => {
    for (const [person, into] of [[people[0], marla], [people[1], bob]]) {
      const created = await users.create({ ...person, credentials: { password } });
      assertUser(created, person, `create ${person.username}`);
      Object.assign(into, created);
      const byEmail = await users.getByEmail(person.email);
      equal(byEmail.id, created.id, `getByEmail(${person.email})`);
    }
    return `${marla.username} (${marla.id}), ${bob.username} (${bob.id})`;
  });

  await step('a created user signs in through the client (contensis_classic grant)', async () => {
    const asMarla = UniversalClient.create({
      rootUrl,
      clientType: 'contensis_classic',
      clientDetails: { username: marla.username, password },
    });
    const token = await asMarla.ensureBearerToken();
    check(typeof token === 'string' && token.length > 0, 'a bearer token for the user', token);
    // Not an administrator: the token is good, the call is refused.
    const failure = await rejection(asMarla.security.groups.getById(group.id), 'getById as a non-administrator');
    assertFailure(failure, 403, 'Forbidden', 'getById as a non-administrator');
    return 'token issued; a call as that user answers 403 Forbidden';
  });

  await step('addUser puts a user in the group; hasUser is true', async () => {
    await groups.addUser(groupName, marla.username);
    equal(await groups.hasUser(group.id, marla.email), true, 'hasUser(group id, member email)');
    equal(await groups.hasUser(groupName, marla.id), true, 'hasUser(group name, member id)');
    equal(await groups.hasUser(groupName, bob.username), false, 'hasUser for the user not added');
    equal(await users.userIsMemberOf(marla.username, groupName), true, 'userIsMemberOf(member, group)');
    return `${marla.username} in ${groupName}`;
  });

  await step("the group's users list shows the member", async () => {
    assertMembers(await groups.getUsersByGroupName(groupName), [marla], 'getUsersByGroupName');
    const paged = await groups.getUsersByGroupId(group.id, { pageOptions: { pageIndex: 0, pageSize: 10 } });
    assertMembers(paged, [marla], 'getUsersByGroupId with page options');
    equal([paged.pageIndex, paged.pageSize], [0, 10], 'getUsersByGroupId: pageIndex, pageSize');
    const inGroups = await users.getUserGroups(marla.id);
    check(
      Array.isArray(inGroups?.items) && inGroups.items.some((g) => g.id === group.id),
      `getUserGroups(${marla.username}) should include ${groupName}`,
      inGroups,
    );
    return `[${paged.items.map((u) => u.username).join(', ')}]`;
  });

  await step('a second member is listed too, ordered by username', async () => {
    await groups.addUser(group.id, bob.id);
    equal(await groups.hasUser(group.id, bob.id), true, 'hasUser for the second member');
    assertMembers(await groups.getUsersByGroupName(groupName), [bob, marla], 'getUsersByGroupName');
    return `[${bob.username}, ${marla.username}]`;
  });

  await step('removeUser takes the first user out; hasUser is false', async () => {
    await groups.removeUser(groupName, marla.username);
    equal(await groups.hasUser(groupName, marla.username), false, 'hasUser after removeUser');
    equal(await users.userIsMemberOf(marla.id, group.id), false, 'userIsMemberOf after removeUser');
    equal(await groups.hasUser(groupName, bob.username), true, 'hasUser for the member not removed');
    assertMembers(await groups.getUsersByGroupName(groupName), [bob], 'getUsersByGroupName after removeUser');
    return `${marla.username} out, ${bob.username} still in`;
  });

  await step('removeUser again fails with the Error body', async () => {
    const failure = await rejection(groups.removeUser(groupName, marla.username), 'removeUser of a non-member');
    const body = assertFailure(failure, 409, 'UserNotInGroup', 'removeUser of a non-member');
    return `${failure.status} ${failure.statusText}, ${body.data.code}: ${body.message}`;
  });

  await step('removeUser of an unknown user or group fails with 404', async () => {
    const noUser = await rejection(groups.removeUser(groupName, `nobody.${run}`), 'removeUser of an unknown user');
    assertFailure(noUser, 404, 'UserNotFound', 'removeUser of an unknown user');
    const noGroup = await rejection(groups.removeUser(`No Such Group ${run}`, bob.username), 'removeUser from an unknown group');
    assertFailure(noGroup, 404, 'GroupNotFound', 'removeUser from an unknown group');
    return '404 UserNotFound, 404 GroupNotFound';
  });
}

try {
  await scenario();
  if (process.env.MEMBERSHIP_TRACE === '1') printTrace();
  console.log(`all ${stepNumber} steps passed against ${rootUrl}`);
} catch (error) {
  const failed = current;
  if (error instanceof Mismatch) {
    console.error(`FAILED at ${failed}: ${error.message}`);
  } else if (error instanceof Error) {
    console.error(`FAILED at ${failed}: the client threw ${error.name}: ${error.message}`);
    console.error(error.stack);
  } else {
    // A non-2xx answer the scenario did not expect: the client rejects with its context.
    console.error(`FAILED at ${failed}: the client rejected a call with ${show(error)}`);
  }
  printTrace();
  process.exit(1);
}
