#include <stdio.h>
#include <stdlib.h>
int main(int argc, char** argv) {
  printf("hello from a wasi:cli/run command; %d args:", argc);
  for (int i = 1; i < argc; i++) printf(" %s", argv[i]);
  printf("\n");
  const char* who = getenv("WHO");
  fprintf(stderr, "who=%s\n", who ? who : "(unset)");
  char buf[256]; size_t n = fread(buf, 1, sizeof buf - 1, stdin); buf[n] = 0;
  if (n) printf("stdin: %s\n", buf);
  return argc > 2 ? 3 : 0;
}
