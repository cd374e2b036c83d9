// Drives membershipd through the official Contensis Management API JavaScript client
// (`contensis-management-api`, pinned in package.json): groups, users and membership (one
// at a time and in bulk), child groups, user updates, passwords, the current user and
// deletion, as an application using the client would call them.
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

function assertGroupNames(list, expected, what) {
  check(list && Array.isArray(list.items), `${what}: a paged list with items`, list);
  equal(list.items.map((g) => g.name), expected, `${what}: groups (name)`);
  equal(list.totalCount, expected.length, `${what}: totalCount`);
}

function assertAuthenticationError(failure, message, what) {
  check(
    failure instanceof Error && failure.name === 'ContensisAuthenticationError',
    `${what}: a ContensisAuthenticationError`,
    `${failure?.name}: ${failure?.message}`,
  );
  equal(failure.message, message, `${what}: its message (the OAuth error)`);
}

// ---- the scenario ------------------------------------------------------------------

const run = randomUUID().slice(0, 8);
const groupName = `Client Compat ${run}`;
const password = `Pa55-${randomUUID()}`;
const people = [
  { username: `marla.${run}`, email: `marla.${run}@example.com`, firstName: 'Marla', lastName: 'Singer' },
  { username: `bob.${run}`, email: `bob.${run}@example.com`, firstName: 'Robert', lastName: 'Paulson' },
];
const others = [
  { username: `tyler.${run}`, email: `tyler.${run}@example.com`, firstName: 'Tyler', lastName: 'Durden' },
  { username: `angel.${run}`, email: `angel.${run}@example.com`, firstName: 'Angel', lastName: 'Face' },
];
const SYSTEM_ADMINISTRATORS = 'System Administrators';

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

/** A client signed in as a user, with the password grant the client calls `contensis_classic`. */
function userClient(username, secret) {
  return UniversalClient.create({
    rootUrl,
    clientType: 'contensis_classic',
    clientDetails: { username, password: secret },
  });
}

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

  // ---- bulk membership, child groups, updates, passwords, deletion ----

  const [tyler, angel] = [{}, {}];

  await step('create two more users, without passwords', async () => {
    for (const [person, into] of [[others[0], tyler], [others[1], angel]]) {
      const created = await users.create(person);
      assertUser(created, person, `create ${person.username}`);
      Object.assign(into, created);
    }
    return `${tyler.username} (${tyler.id}), ${angel.username} (${angel.id})`;
  });

  await step('addUsers adds several users at once; hasUser is true for each', async () => {
    await groups.addUsers(group.id, [marla.id, tyler.id, angel.id]);
    for (const member of [marla, tyler, angel]) {
      equal(await groups.hasUser(group.id, member.id), true, `hasUser(group, ${member.username}) after addUsers`);
    }
    assertMembers(await groups.getUsersByGroupId(group.id), [angel, bob, marla, tyler], 'getUsersByGroupId after addUsers');
    return `[${[angel, bob, marla, tyler].map((u) => u.username).join(', ')}]`;
  });

  let bulk;
  await step('addUsers with one unknown id fails with 404 UserNotFound and adds nobody', async () => {
    bulk = await groups.create({ name: `Bulk ${run}`, description: 'A refused bulk add' });
    const unknown = randomUUID();
    const failure = await rejection(groups.addUsers(bulk.id, [marla.id, unknown, tyler.id]), 'addUsers with an unknown id');
    const body = assertFailure(failure, 404, 'UserNotFound', 'addUsers with an unknown id');
    equal(body.data.missing, [unknown], 'addUsers with an unknown id: data.data.missing');
    equal(await groups.hasUser(bulk.id, marla.id), false, 'hasUser for a known user of the refused addUsers');
    equal(await groups.hasUser(bulk.id, tyler.id), false, 'hasUser for the other known user of the refused addUsers');
    assertMembers(await groups.getUsersByGroupId(bulk.id), [], 'getUsersByGroupId after the refused addUsers');
    return `${failure.status} ${body.data.code}, missing ${show(body.data.missing)}; nobody added`;
  });

  const chain = {};
  await step('child groups top > mid > low: a member of low belongs to top', async () => {
    for (const level of ['top', 'mid', 'low']) {
      chain[level] = await groups.create({ name: `Chain ${run} ${level}`, description: `The ${level} of a chain` });
    }
    await groups.addChildGroup(chain.top.id, chain.mid.id);
    await groups.addChildGroups(chain.mid.name, [chain.low.id]);
    await groups.addUsers(chain.low.id, [angel.id, tyler.id]);
    await groups.addUser(chain.top.id, tyler.id);
    equal(await groups.hasUser(chain.top.id, angel.id), true, 'hasUser(top, a member of low)');
    equal(await groups.hasUser(chain.top.name, angel.username), true, 'hasUser(top by name, a member of low by username)');
    equal(await users.userIsMemberOf(angel.id, chain.top.name), true, 'userIsMemberOf(a member of low, top)');
    equal(await groups.hasUser(chain.top.id, marla.id), false, 'hasUser(top, a user in none of the chain)');
    return `${chain.top.name} > ${chain.mid.name} > ${chain.low.name}; ${angel.username} in low`;
  });

  await step('getUsersByGroupName with includeInherited lists the members of child groups, each once', async () => {
    const inherited = await groups.getUsersByGroupName(chain.top.name, {
      includeInherited: true,
      pageOptions: { pageIndex: 0, pageSize: 25 },
    });
    assertMembers(inherited, [angel, tyler], 'getUsersByGroupName(top, includeInherited)');
    assertMembers(await groups.getUsersByGroupName(chain.top.name), [tyler], 'getUsersByGroupName(top) without includeInherited');
    assertMembers(
      await groups.getUsersByGroupId(chain.top.id, { includeInherited: false }),
      [tyler],
      'getUsersByGroupId(top, includeInherited: false)',
    );
    assertMembers(await groups.getUsersByGroupId(chain.mid.id, { includeInherited: true }), [angel, tyler], 'getUsersByGroupId(mid, includeInherited)');
    assertMembers(await groups.getUsersByGroupId(chain.mid.id), [], 'getUsersByGroupId(mid) without includeInherited');
    return `inherited [${inherited.items.map((u) => u.username).join(', ')}], direct [${tyler.username}]`;
  });

  await step('getChildGroupsByGroupName with includeInherited and includeSelf gives the whole chain', async () => {
    const names = ['low', 'mid', 'top'].map((level) => chain[level].name);
    const whole = await groups.getChildGroupsByGroupName(chain.top.name, { includeInherited: true, includeSelf: true });
    assertGroupNames(whole, names, 'getChildGroupsByGroupName(top, includeInherited, includeSelf)');
    assertGroupNames(await groups.getChildGroupsByGroupName(chain.top.name), [chain.mid.name], 'getChildGroupsByGroupName(top)');
    assertGroupNames(
      await groups.getChildGroupsByGroupId(chain.top.id, { includeInherited: true }),
      [chain.low.name, chain.mid.name],
      'getChildGroupsByGroupId(top, includeInherited)',
    );
    assertGroupNames(
      await groups.getChildGroupsByGroupId(chain.top.id, { includeSelf: true }),
      [chain.mid.name, chain.top.name],
      'getChildGroupsByGroupId(top, includeSelf)',
    );
    assertGroupNames(
      await users.getUserGroups({ userId: angel.id, includeInherited: true }),
      [...names, groupName],
      'getUserGroups(a member of low, includeInherited)',
    );
    assertGroupNames(await users.getUserGroups(angel.id), [chain.low.name, groupName], 'getUserGroups(a member of low)');
    return `[${whole.items.map((g) => g.name).join(', ')}]`;
  });

  await step('putting top under low is refused with 409 GroupCycle', async () => {
    const one = await rejection(groups.addChildGroup(chain.low.id, chain.top.id), 'addChildGroup(low, top)');
    const body = assertFailure(one, 409, 'GroupCycle', 'addChildGroup(low, top)');
    const many = await rejection(groups.addChildGroups(chain.low.name, [chain.top.name]), 'addChildGroups(low, [top])');
    assertFailure(many, 409, 'GroupCycle', 'addChildGroups(low, [top])');
    assertGroupNames(await groups.getChildGroupsByGroupId(chain.low.id), [], 'the child groups of low after the refusals');
    return `${one.status} ${body.data.code}: ${body.message}`;
  });

  await step('users.update changes the last name and a custom field', async () => {
    const read = await users.getById(marla.id);
    equal([read.firstname, read.lastname], ['Marla', 'Singer'], 'the user as read: firstname, lastname');
    // The client's User type spells the name fields firstName and lastName.
    const updated = await users.update({ ...read, lastName: 'Durden', custom: { ...read.custom, team: 'Project Mayhem' } });
    assertUser(updated, people[0], 'the user users.update resolves with');
    equal(updated.id, marla.id, 'the updated user: id');
    equal([updated.firstname, updated.lastname], ['Marla', 'Durden'], 'the updated user: firstname, lastname');
    equal(updated.custom?.team, 'Project Mayhem', 'the updated user: custom.team');
    const again = await users.getById(marla.id);
    equal([again.firstname, again.lastname], ['Marla', 'Durden'], 'read back: firstname, lastname');
    equal(again.custom?.team, 'Project Mayhem', 'read back: custom.team');
    return `${again.firstname} ${again.lastname}, custom ${show(again.custom)}`;
  });

  let marlaPassword = password;
  await step('updatePassword as the user with the right existing password; only the new one signs in', async () => {
    const asMarla = userClient(marla.username, marlaPassword);
    const newPassword = `Pa55-new-${randomUUID()}`;
    const result = await asMarla.security.users.updatePassword({ userId: marla.id, existing: marlaPassword, new: newPassword });
    equal(result, {}, 'updatePassword resolves with the empty body');
    const fresh = userClient(marla.username, newPassword);
    const token = await fresh.ensureBearerToken();
    check(typeof token === 'string' && token.length > 0, 'a bearer token for the new password', token);
    const stale = await rejection(userClient(marla.username, marlaPassword).ensureBearerToken(), 'a token for the old password');
    assertAuthenticationError(stale, 'invalid_grant', 'a token for the old password');
    marlaPassword = newPassword;
    return `new password signs in; the old one: ${stale.name}: ${stale.message}`;
  });

  await step('updatePassword with a wrong or missing existing password fails with 409 ExistingPasswordInvalid', async () => {
    const asMarla = userClient(marla.username, marlaPassword);
    const attempt = `Pa55-${randomUUID()}`;
    const wrong = await rejection(
      asMarla.security.users.updatePassword({ userId: marla.id, existing: `${marlaPassword}-wrong`, new: attempt }),
      'updatePassword with a wrong existing password',
    );
    const body = assertFailure(wrong, 409, 'ExistingPasswordInvalid', 'updatePassword with a wrong existing password');
    const missing = await rejection(
      asMarla.security.users.updatePassword({ userId: marla.id, new: attempt }),
      'updatePassword by the user without the existing password',
    );
    assertFailure(missing, 409, 'ExistingPasswordInvalid', 'updatePassword by the user without the existing password');
    const short = await rejection(
      asMarla.security.users.updatePassword({ userId: marla.id, existing: marlaPassword, new: 'short' }),
      'updatePassword with a 5-character new password',
    );
    assertFailure(short, 422, 'ValidationFailed', 'updatePassword with a 5-character new password');
    const stale = await rejection(userClient(marla.username, attempt).ensureBearerToken(), 'a token for a refused password');
    assertAuthenticationError(stale, 'invalid_grant', 'a token for a refused password');
    const token = await userClient(marla.username, marlaPassword).ensureBearerToken();
    check(typeof token === 'string' && token.length > 0, 'the password still signs in after the refusals', token);
    return `${wrong.status} ${body.data.code}; without existing 409; a short one 422`;
  });

  await step('an administrator sets a password without the existing one', async () => {
    const reset = `Pa55-reset-${randomUUID()}`;
    equal(await users.updatePassword({ userId: marla.id, new: reset }), {}, 'updatePassword by an administrator resolves with the empty body');
    const token = await userClient(marla.username, reset).ensureBearerToken();
    check(typeof token === 'string' && token.length > 0, 'a bearer token for the password the administrator set', token);
    const stale = await rejection(userClient(marla.username, marlaPassword).ensureBearerToken(), 'a token for the replaced password');
    assertAuthenticationError(stale, 'invalid_grant', 'a token for the replaced password');
    marlaPassword = reset;
    return 'the new password signs in; the replaced one does not';
  });

  await step('getCurrent as the user returns itself', async () => {
    const asMarla = userClient(marla.username, marlaPassword);
    const me = await asMarla.security.users.getCurrent();
    assertUser(me, people[0], 'getCurrent as the user');
    equal(me.id, marla.id, 'getCurrent as the user: id');
    equal(me.lastname, 'Durden', 'getCurrent as the user: lastname');
    equal((await asMarla.security.users.getById(marla.id)).id, marla.id, 'getById of itself as the user');
    const other = await rejection(asMarla.security.users.getById(tyler.id), 'getById of another user as a non-administrator');
    assertFailure(other, 403, 'Forbidden', 'getById of another user as a non-administrator');
    const admin = await users.getCurrent();
    equal(admin.username, `svc.${clientId}`, 'getCurrent as the administrator client: username');
    return `${me.username} (${me.id}); the administrator client is ${admin.username}`;
  });

  await step('groups.update changes the description', async () => {
    const read = await groups.getById(group.id);
    const updated = await groups.update({ ...read, description: 'Changed by the client scenario' });
    equal(updated.id, group.id, 'the updated group: id');
    equal(updated.name, groupName, 'the updated group: name');
    equal(updated.description, 'Changed by the client scenario', 'the updated group: description');
    equal(updated.custom, { run }, 'the updated group: custom');
    const again = await groups.getByName(groupName);
    equal(again.description, 'Changed by the client scenario', 'read back: description');
    return `${again.name}: ${show(again.description)}`;
  });

  await step('users.delete removes the user and its memberships', async () => {
    await users.delete(bob.id);
    const gone = await rejection(users.getById(bob.id), 'getById of a deleted user');
    const body = assertFailure(gone, 404, 'UserNotFound', 'getById of a deleted user');
    assertMembers(await groups.getUsersByGroupId(group.id), [angel, marla, tyler], 'the members after users.delete');
    return `${bob.username}: ${gone.status} ${body.data.code}`;
  });

  await step('groups.delete of groups with members; getByName then answers 404', async () => {
    await groups.delete(group.id);
    const gone = await rejection(groups.getByName(groupName), 'getByName of a deleted group');
    const body = assertFailure(gone, 404, 'GroupNotFound', 'getByName of a deleted group');
    assertGroupNames(
      await users.getUserGroups({ userId: angel.id, includeInherited: true }),
      ['low', 'mid', 'top'].map((level) => chain[level].name),
      'getUserGroups(a former member, includeInherited)',
    );
    // By name, from the middle of the chain: top no longer reaches low.
    await groups.delete(chain.mid.name);
    const midGone = await rejection(groups.getById(chain.mid.id), 'getById of the deleted mid group');
    assertFailure(midGone, 404, 'GroupNotFound', 'getById of the deleted mid group');
    assertGroupNames(
      await groups.getChildGroupsByGroupId(chain.top.id, { includeInherited: true, includeSelf: true }),
      [chain.top.name],
      'getChildGroupsByGroupId(top, includeInherited, includeSelf) after deleting mid',
    );
    assertMembers(
      await groups.getUsersByGroupName(chain.top.name, { includeInherited: true }),
      [tyler],
      'getUsersByGroupName(top, includeInherited) after deleting mid',
    );
    equal(await groups.hasUser(chain.top.id, angel.id), false, 'hasUser(top, a member of low) after deleting mid');
    return `${groupName}: ${gone.status} ${body.data.code}; ${chain.mid.name} deleted by name`;
  });

  await step('deleting System Administrators is refused with 403 SystemGroup', async () => {
    const failure = await rejection(groups.delete(SYSTEM_ADMINISTRATORS), 'groups.delete(System Administrators)');
    const body = assertFailure(failure, 403, 'SystemGroup', 'groups.delete(System Administrators)');
    equal((await groups.getByName(SYSTEM_ADMINISTRATORS)).name, SYSTEM_ADMINISTRATORS, 'System Administrators is still there');
    equal(await users.userIsMemberOf(`svc.${clientId}`, SYSTEM_ADMINISTRATORS), true, 'the administrator client is still a member');
    return `${failure.status} ${body.data.code}: ${body.message}`;
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
