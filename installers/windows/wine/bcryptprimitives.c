/* Smoke tests only, never shipped: Wine 8 has no bcryptprimitives.dll, and every Rust
 * (1.78+) Windows binary imports ProcessPrng from it for std's random numbers. This stand-in
 * answers with RtlGenRandom (advapi32 SystemFunction036), which Wine has. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
