/* ids: print the real, effective and saved user and group ids ("uid=R,E,S gid=R,E,S"). Made
 * setuid-root by the tests: under no_new_privs execve must not raise the effective id. */
#define _GNU_SOURCE
#include <stdio.h>
#include <unistd.h>

int main(void)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;

	getresuid(&ru, &eu, &su);
	getresgid(&rg, &eg, &sg);
	printf("uid=%u,%u,%u gid=%u,%u,%u\n", ru, eu, su, rg, eg, sg);
	return 0;
}
