/**
 * @module
 * The Lua both the append and the create scripts end with: running the call's operation list.
 */

/**
 * Runs the operation list whose count is `ARGV[<countAt>]`: per operation a command, a key, the
 * number of arguments and the arguments; "BUCKET" increments a time bucket's field and sets the
 * bucket's expiry when the field is new. Needs the locals `call`, `byte`, `tonumber`, `unpack`.
 */
export function operations(countAt: string): string {
  return `local o = ${countAt} + 1
for _ = 1, tonumber(ARGV[${countAt}]) do
  local command, key, m = ARGV[o], ARGV[o + 1], ARGV[o + 2]
  m = #m == 1 and byte(m) - 48 or tonumber(m)
  if command == 'BUCKET' then
    if call('HINCRBY', key, ARGV[o + 3], ARGV[o + 4]) == tonumber(ARGV[o + 4]) then
      call('PEXPIREAT', key, ARGV[o + 5])
    end
  else
    call(command, key, unpack(ARGV, o + 3, o + 2 + m))
  end
  o = o + 3 + m
end`;
}
